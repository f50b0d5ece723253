"""Keras -> ONNX export, stamped with the weights' fingerprint so a stale file is refused."""

from pathlib import Path

import numpy as np

from .errors import DataError


def export_onnx(model, path: Path, shapes: dict, fingerprint: str):
    """Write ``model`` to ``path`` as ONNX with ``weights_sha256`` in its metadata, atomically."""
    import onnx

    from .io import atomic_path

    # Keras exports only models that have been called once; one zero clip is enough.
    model({name: np.zeros((1, *shape), np.float32) for name, shape in shapes.items()})
    with atomic_path(path, suffix=".onnx") as tmp:
        model.export(str(tmp), format="onnx", verbose=False)
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = "weights_sha256", fingerprint
        onnx.save(proto, str(tmp))


def onnx_fingerprint(session) -> str | None:
    """The ``weights_sha256`` stamped into an ONNX Runtime session's model, if any."""
    return session.get_modelmeta().custom_metadata_map.get("weights_sha256")


def check_fingerprint(found: str | None, bundle: dict, path: Path):
    """One-line refusal when a model file's weights are not the ones the bundle describes."""
    if found != bundle["weights_sha256"]:
        raise DataError(f"{path}: its weights are not the model described by {Path(path).parent / 'bundle.json'} "
                        "(a stale or foreign file); rebuild both with `dvc repro train`")


def save_trained_model(model_dir: Path, model, params: dict, shapes: dict, priors: dict) -> str:
    """Write ``model.keras``, ``model.onnx``, ``filterbanks.npz`` and ``bundle.json`` into
    ``model_dir``, all stamped with one weights fingerprint (returned). The bundle is written
    last, so a crash leaves no bundle describing half-written weights."""
    from .bundle import make_bundle, save_bundle, save_filterbanks, weights_fingerprint
    from .features import filterbanks
    from .io import atomic_path

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = weights_fingerprint(model.get_weights())
    with atomic_path(model_dir / "model.keras", suffix=".keras") as tmp:
        model.save(tmp)
    export_onnx(model, model_dir / "model.onnx", shapes, fingerprint)
    banks_sha256 = save_filterbanks(model_dir, filterbanks(params["audio"]["sample_rate"], params["featurize"]))
    save_bundle(model_dir, make_bundle(params, shapes, priors, fingerprint, banks_sha256))
    return fingerprint
