"""Keras -> ONNX export, stamped with the weights' fingerprint so a stale file is refused."""

from pathlib import Path

import numpy as np

from ser.core.errors import DataError


def export_onnx(model, path: Path, shapes: dict, fingerprint: str, bundle_sha256: str = ""):
    """Write ``model`` to ``path`` as ONNX with ``weights_sha256`` (and the bundle's
    ``bundle_sha256``) in its metadata, atomically."""
    from ser.core.onnx import write_onnx

    # Keras exports only models that have been called once; one zero clip is enough.
    write_onnx(model, {name: np.zeros((1, *shape), np.float32) for name, shape in shapes.items()}, path,
               {"weights_sha256": fingerprint, "bundle_sha256": bundle_sha256})


def onnx_fingerprint(session) -> str | None:
    """The ``weights_sha256`` stamped into an ONNX Runtime session's model, if any."""
    return session.get_modelmeta().custom_metadata_map.get("weights_sha256")


def onnx_bundle_fingerprint(session) -> str | None:
    """The ``bundle_sha256`` of the bundle an ONNX model was exported with, if any."""
    return session.get_modelmeta().custom_metadata_map.get("bundle_sha256")


def check_fingerprint(found: str | None, bundle, path: Path, key: str = "weights_sha256"):
    """One-line refusal when a model file's weights (or the bundle it was exported with, for
    ``key="bundle_sha256"``) are not the ones the bundle describes."""
    if found != getattr(bundle, key):
        raise DataError(f"{path}: its weights are not the model described by {Path(path).parent / 'bundle.json'} "
                        "(a stale or foreign file); rebuild both with `dvc repro train`")


def cut_encoder(source: Path, path: Path, n_layers: int, fingerprint: str):
    """Write the ``embed`` stage's all-layers encoder export cut to its first ``n_layers`` layers:
    the very nodes that embedded the training clips, minus the blocks no kept layer needs (for
    layers 2 and 3 of Whisper base, half the encoder: half the load and run time in predict),
    ending as the export does, in the kept layers' states concatenated, stamped ``fingerprint``."""
    import onnx

    from ser.core.files import atomic_path

    proto = onnx.load(str(source))
    graph = proto.graph
    producer = {out: node for node in graph.node for out in node.output}
    node = producer.get(graph.output[0].name)
    while node is not None and node.op_type == "Identity":
        node = producer.get(node.input[0])
    if node is None or node.op_type != "Concat" or len(node.input) < n_layers:
        raise DataError(f"{source}: not an encoder export of this version of ser (rerun `dvc repro embed`)")
    kept = list(node.input[:n_layers])
    needed, todo = set(), list(kept)
    while todo:   # every node the kept layers' states depend on
        name = todo.pop()
        source = producer.get(name)
        if source is not None and id(source) not in needed:
            needed.add(id(source))
            todo.extend(source.input)
    nodes = [n for n in graph.node if id(n) in needed]   # in the export's (topological) order
    used = {name for n in nodes for name in n.input}
    initializers = [t for t in graph.initializer if t.name in used]
    graph.ClearField("node")
    graph.node.extend(nodes)
    graph.node.append(onnx.helper.make_node("Concat", kept, ["hidden_states"], axis=1, name="Concat_layers"))
    graph.ClearField("initializer")
    graph.initializer.extend(initializers)
    graph.ClearField("output")
    graph.output.append(onnx.helper.make_tensor_value_info("hidden_states", onnx.TensorProto.FLOAT, None))
    proto.ClearField("metadata_props")
    entry = proto.metadata_props.add()
    entry.key, entry.value = "encoder_sha256", fingerprint
    with atomic_path(path, suffix=".onnx") as tmp:
        tmp.write_bytes(proto.SerializeToString(deterministic=True))


def save_trained_model(model_dir: Path, model, params: dict, shapes: dict, priors: dict, calibration: dict,
                       encoder_info: dict | None = None, encoder_export: Path | None = None) -> str:
    """Write ``model.keras``, ``model.onnx``, ``filterbanks.npz`` and ``bundle.json`` into
    ``model_dir``, all stamped with one weights fingerprint (returned); ``calibration`` is
    what the bundle carries (``ser.bundle.format.make_bundle``). A model that takes the
    encoder's embedding also gets ``encoder.onnx``: ``encoder_export``, the file the ``encoder``
    stage embedded the training clips with (``encoder_info``: its ``export_info``), cut after the
    deepest layer the model uses (``cut_encoder``).
    The bundle is written last, so a crash leaves no bundle describing half-written weights."""
    from ser.bundle.format import (
        ENCODER_FILE,
        filterbanks_fingerprint,
        make_bundle,
        save_bundle,
        save_filterbanks,
        weights_fingerprint,
    )
    from ser.features import encoder
    from ser.features.handcrafted import filterbanks

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = weights_fingerprint(model.get_weights())
    banks = dict(filterbanks(params["audio"]["sample_rate"], params["featurize"]))
    encoder_entry = None
    if "encoder" in shapes:
        layers = list(params["encoder"]["layers"])
        exported = list(range(max(layers) + 1))   # blocks past the deepest layer used are dropped
        encoder_entry = {**encoder_info, "layers": layers, "pooling": params["encoder"]["pooling"],
                         "fingerprint": encoder.encoder_fingerprint(encoder_info["model_sha256"], exported, "mean_std")}
        cut_encoder(encoder_export, model_dir / ENCODER_FILE, len(exported), encoder_entry["fingerprint"])
        banks.update(encoder.whisper_filterbanks(encoder_info["n_mels"]))
    else:
        (model_dir / ENCODER_FILE).unlink(missing_ok=True)  # never leave a stale encoder beside a model
    from ser.bundle.keras_file import write_keras
    bundle = make_bundle(params, shapes, priors, fingerprint, filterbanks_fingerprint(banks), calibration, encoder_entry)
    # canonical bytes (a rerun leaves models/ unchanged), stamped like model.onnx with the bundle
    write_keras(model, model_dir / "model.keras", bundle["bundle_sha256"])
    export_onnx(model, model_dir / "model.onnx", shapes, fingerprint, bundle["bundle_sha256"])
    save_filterbanks(model_dir, banks)
    save_bundle(model_dir, bundle)
    return fingerprint
