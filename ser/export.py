"""Keras -> ONNX export, stamped with the weights' fingerprint so a stale file is refused."""

from pathlib import Path

import numpy as np

from .errors import DataError


def export_onnx(model, path: Path, shapes: dict, fingerprint: str):
    """Write ``model`` to ``path`` as ONNX with ``weights_sha256`` in its metadata, atomically."""
    from .io import write_onnx

    # Keras exports only models that have been called once; one zero clip is enough.
    write_onnx(model, {name: np.zeros((1, *shape), np.float32) for name, shape in shapes.items()}, path,
               {"weights_sha256": fingerprint})


def onnx_fingerprint(session) -> str | None:
    """The ``weights_sha256`` stamped into an ONNX Runtime session's model, if any."""
    return session.get_modelmeta().custom_metadata_map.get("weights_sha256")


def check_fingerprint(found: str | None, bundle: dict, path: Path):
    """One-line refusal when a model file's weights are not the ones the bundle describes."""
    if found != bundle["weights_sha256"]:
        raise DataError(f"{path}: its weights are not the model described by {Path(path).parent / 'bundle.json'} "
                        "(a stale or foreign file); rebuild both with `dvc repro train`")


def save_trained_model(model_dir: Path, model, params: dict, shapes: dict, priors: dict,
                       encoder_info: dict | None = None, encoder_export: Path | None = None) -> str:
    """Write ``model.keras``, ``model.onnx``, ``filterbanks.npz`` and ``bundle.json`` into
    ``model_dir``, all stamped with one weights fingerprint (returned). A model that takes the
    encoder's embedding also gets ``encoder.onnx``: a copy of ``encoder_export``, the file the
    ``embed`` stage embedded the training clips with (``encoder_info``: its ``describe``).
    The bundle is written last, so a crash leaves no bundle describing half-written weights."""
    import shutil

    from . import encoder
    from .bundle import ENCODER_FILE, make_bundle, save_bundle, save_filterbanks, weights_fingerprint
    from .features import filterbanks
    from .io import atomic_path

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = weights_fingerprint(model.get_weights())
    banks = dict(filterbanks(params["audio"]["sample_rate"], params["featurize"]))
    encoder_entry = None
    if "encoder" in shapes:
        encoder_entry = {**encoder_info, "layers": list(params["encoder"]["layers"]),
                         "pooling": params["encoder"]["pooling"]}
        with atomic_path(model_dir / ENCODER_FILE, suffix=".onnx") as tmp:
            shutil.copyfile(encoder_export, tmp)
        banks.update(encoder.whisper_filterbanks(encoder_info["n_mels"]))
    else:
        (model_dir / ENCODER_FILE).unlink(missing_ok=True)  # never leave a stale encoder beside a model
    with atomic_path(model_dir / "model.keras", suffix=".keras") as tmp:
        model.save(tmp)
    export_onnx(model, model_dir / "model.onnx", shapes, fingerprint)
    banks_sha256 = save_filterbanks(model_dir, banks)
    save_bundle(model_dir, make_bundle(params, shapes, priors, fingerprint, banks_sha256, encoder_entry))
    return fingerprint
