"""ONNX files and sessions: one factory for every ONNX Runtime session (encoder, speech detector, model)
and a writer whose bytes do not depend on the exporter's run (canonical graphs)."""

from ser.core.errors import DataError
from ser.core.files import atomic_path


def open_session(path, what: str, threads: int = 0, inter_threads: int = 0):
    """An ONNX Runtime session on the CPU for the model at ``path``, its log quiet. ``threads``
    and ``inter_threads`` are ONNX Runtime's intra- and inter-op thread counts (0: its
    default). A file it cannot load is a one-line ``DataError`` naming ``path`` and ``what``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = inter_threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for bad files
        raise DataError(f"{path}: cannot load {what} ({type(err).__name__})") from None


def write_onnx(model, example, path, metadata: dict):
    """Write a Keras model's ONNX export with ``metadata`` (e.g. a fingerprint) stamped into it,
    in canonical form (``canonical_onnx``), so that one model always gives the same bytes.
    The model is called once on ``example`` first: Keras exports only models that have run."""
    import onnx

    model(example)
    with atomic_path(path, suffix=".onnx") as tmp:
        model.export(str(tmp), format="onnx", verbose=False)
        proto = canonical_onnx(onnx.load(str(tmp)))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        tmp.write_bytes(proto.SerializeToString(deterministic=True))


def canonical_onnx(proto):
    """``proto`` with its nodes in a canonical order and its intermediate names canonical.

    tf2onnx names folded constants and helper nodes with a global counter and visits the graph
    in an order that changes from run to run, so two exports of one model differ in bytes
    (never in what they compute). Here every node is identified by what it computes (op,
    attributes and, recursively, its inputs: a Merkle hash, blind to names), nodes are
    topologically sorted with ties broken by that identity, and nodes, intermediate tensors,
    initializers and symbolic dimensions are renamed by position. Graph inputs and outputs keep
    their names."""
    import hashlib
    import heapq

    graph = proto.graph
    initializers = {t.name: t for t in graph.initializer}
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    producer = {out: (node, k) for node in graph.node for k, out in enumerate(node.output)}

    def digest(*parts):
        return hashlib.sha256(b"\0".join(parts)).hexdigest()

    constant_key = {}
    for name, tensor in initializers.items():
        anonymous = type(tensor)()
        anonymous.CopyFrom(tensor)
        anonymous.name = ""
        constant_key[name] = digest(b"const", anonymous.SerializeToString(deterministic=True))
    node_key = {}
    for node in graph.node:   # tf2onnx writes nodes in a topological order
        def input_key(name):
            if name in producer:
                source, k = producer[name]
                return f"{node_key[id(source)]}:{k}".encode()
            return constant_key.get(name, f"input:{name}").encode()
        attributes = b"".join(a.SerializeToString(deterministic=True) for a in sorted(node.attribute, key=lambda a: a.name))
        node_key[id(node)] = digest(node.op_type.encode(), node.domain.encode(), attributes,
                                    *(input_key(i) for i in node.input))
    users = {id(node): [] for node in graph.node}
    waiting = {}
    for node in graph.node:
        sources = {id(producer[i][0]) for i in node.input if i in producer}
        waiting[id(node)] = len(sources)
        for source in sources:
            users[source].append(node)
    ready = [(node_key[id(n)], i, n) for i, n in enumerate(graph.node) if waiting[id(n)] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, _, node = heapq.heappop(ready)
        order.append(node)
        for user in users[id(node)]:
            waiting[id(user)] -= 1
            if waiting[id(user)] == 0:
                heapq.heappush(ready, (node_key[id(user)], len(order), user))
    renamed = {}
    for i, node in enumerate(order):
        for k, out in enumerate(node.output):
            if out and out not in keep:
                renamed[out] = f"t{i}_{k}"
    used = [name for node in order for name in node.input if name in initializers]
    for j, name in enumerate(dict.fromkeys(used)):
        if name not in keep:
            renamed[name] = f"c{j}"
    nodes = []
    for i, node in enumerate(order):
        copy = type(node)()
        copy.CopyFrom(node)
        copy.name = f"{node.op_type}_{i}"
        copy.doc_string = ""
        copy.input[:] = [renamed.get(name, name) for name in node.input]
        copy.output[:] = [renamed.get(name, name) for name in node.output]
        nodes.append(copy)
    constants = []   # the ones some node reads, in order of first use
    for name in dict.fromkeys(used):
        copy = type(initializers[name])()
        copy.CopyFrom(initializers[name])
        copy.name = renamed.get(name, name)
        constants.append(copy)
    graph.ClearField("node")
    graph.node.extend(nodes)
    graph.ClearField("initializer")
    graph.initializer.extend(constants)
    graph.ClearField("value_info")   # shape hints only; ONNX Runtime infers them
    graph.doc_string = ""            # "converted from <TF function name with a counter>"
    symbols = {}                     # symbolic dimensions (tf2onnx: unk__<counter>), by first use
    for value in [*graph.input, *graph.output]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param"):
                dim.dim_param = symbols.setdefault(dim.dim_param, f"d{len(symbols)}")
    return proto
