"""Atomic writers: an output is either complete or absent, never half-written."""

import contextlib
import json
import os
import secrets
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    The temporary file is hidden (``.NAME.XXXXXXXXXX``) and is removed whenever the block does
    not succeed, on any exception: KeyboardInterrupt too, and SIGTERM/SIGHUP in a stage or the
    CLI, which ``ser.errors.signals_as_interrupts`` turns into one. Its name is chosen before the
    file is made, inside the ``try``: no moment exists where the file is there but unknown to
    the cleanup."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        while True:
            tmp = path.parent / f".{path.name}.{secrets.token_hex(5)}{suffix or path.suffix}"
            try:
                # 0o666 less the umask: the permissions any new output gets (mkstemp would make 0600).
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
                break
            except FileExistsError:   # another writer's (40 random bits: practically never)
                tmp = None
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def write_json(path, data):
    """Write ``data`` as indented JSON (keys kept in insertion order)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def write_csv(path, frame):
    """Write a DataFrame as CSV without its index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_npz(path, **arrays):
    """Write arrays to an uncompressed .npz file."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


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


def read_csv(path):
    """Read a CSV written by this package (strings stay strings, empty stays empty)."""
    import pandas as pd  # imported here: prediction never needs pandas, and it costs ~0.3 s

    return pd.read_csv(path, dtype=str, keep_default_na=False)


KERAS_ZIP_TIME = (1980, 1, 1, 0, 0, 0)   # the earliest a zip entry can hold


KERAS_STAMP = "ser_bundle_sha256"   # metadata.json key: the bundle a .keras file was saved with


def write_keras(model, path, bundle_sha256: str | None = None):
    """Save a Keras model as ``.keras``, atomically, in canonical form (``canonical_keras``):
    one model always gives the same bytes. ``bundle_sha256`` is stamped into its
    ``metadata.json`` (``KERAS_STAMP``), as ``model.onnx`` carries it: a bundle edited after
    training fails it on either backend."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
        tmp.write_bytes(canonical_keras(tmp.read_bytes(), {KERAS_STAMP: bundle_sha256} if bundle_sha256 else None))


def keras_stamp(path) -> str | None:
    """The ``bundle_sha256`` a ``.keras`` file was stamped with (``write_keras``), or None."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("metadata.json")).get(KERAS_STAMP)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def canonical_keras(data: bytes, stamp: dict | None = None) -> bytes:
    """The bytes of a ``.keras`` archive with what changes from run to run taken out.

    Keras stamps each save with the time, twice: ``metadata.json`` holds ``date_saved`` (dropped
    here) and the zip entries hold the time they were written (set to 1980-01-01 here). And
    ``config.json`` links objects that layers share (e.g. one dtype policy) by a
    ``shared_object_id`` that is the object's memory address in the saving process: renumbered
    here 1, 2, ... in order of first appearance (the ids only pair configs within the file).
    Entries are written in name order, each with its original compression and fixed
    permissions. The rest is untouched: ``model.weights.h5`` holds no timestamps (h5py does not
    track times by default), so one model's weights are already the same bytes on every save."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in sorted(source.infolist(), key=lambda i: i.filename):
            content = source.read(info)
            if info.filename == "metadata.json":
                metadata = json.loads(content)
                metadata.pop("date_saved", None)
                metadata.update(stamp or {})
                content = json.dumps(metadata).encode()
            elif info.filename == "config.json":   # written by Keras as json.dumps(config): the same here
                content = json.dumps(_renumber_shared_objects(json.loads(content), {})).encode()
            entry = zipfile.ZipInfo(info.filename, date_time=KERAS_ZIP_TIME)
            entry.compress_type = info.compress_type
            entry.create_system = 3              # Unix, wherever it was written
            entry.external_attr = 0o644 << 16    # rw-r--r--
            target.writestr(entry, content)
    return out.getvalue()


def _renumber_shared_objects(config, numbers: dict):
    """``config`` (a Keras config.json, parsed) with each ``shared_object_id`` replaced by its
    position among the distinct ids, in order of first appearance."""
    if isinstance(config, dict):
        return {key: (numbers.setdefault(value, len(numbers) + 1) if key == "shared_object_id"
                      else _renumber_shared_objects(value, numbers)) for key, value in config.items()}
    if isinstance(config, list):
        return [_renumber_shared_objects(value, numbers) for value in config]
    return config


def publish_tree(scratch, target, names):
    """Move ``names`` (files or folders) from the ``scratch`` folder into ``target``, each
    replacing what was there, then remove ``scratch``: outputs written piecemeal during a run
    (dvclive's per-epoch files) appear only whole, at its end."""
    import shutil

    scratch, target = Path(scratch), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        new, old = scratch / name, target / name
        if old.is_dir():
            retired = scratch / f".old-{name}"
            os.replace(old, retired)   # a rename: the previous version stays whole until replaced
        os.replace(new, old)
    shutil.rmtree(scratch, ignore_errors=True)
