"""The model bundle: weights plus everything prediction needs to reproduce the inputs.

``models/bundle.json`` records the label set, sample rate, cleaning, feature settings, the
normalisation mode with its training statistics, the training params and a fingerprint of
the exact weights; prediction never reads the current params.yaml, and refuses model files
whose weights do not match the fingerprint. ``models/filterbanks.npz`` holds the matrices the
features apply (``ser.features.filterbanks``, and Whisper's window and mel filterbank when the
model uses the encoder), so prediction never imports librosa; the bundle carries their
fingerprint too. ``models/encoder.onnx`` is the pretrained encoder (every layer; the bundle's
``encoder.layers`` and ``encoder.pooling`` select from its output), stamped with the bundle's
``encoder.fingerprint`` (the weights' SHA-256 and the layers exported).
"""

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from .errors import DataError
from .io import write_json, write_npz

BUNDLE_VERSION = 4
FILTERBANKS = "filterbanks.npz"
ENCODER_FILE = "encoder.onnx"
ENCODER_KEYS = {"weights": str, "model_sha256": str, "layers": list, "pooling": str, "n_mels": int, "d_model": int,
                "n_layers": int, "max_frames": int, "fingerprint": str}
REQUIRED = {"classes": list, "label_map": dict, "sample_rate": int, "silence_top_db": (int, float),
            "min_duration_s": (int, float), "featurize": dict, "normalize": dict, "inputs": list,
            "shapes": dict, "weights_sha256": str, "filterbanks_sha256": str}


def weights_fingerprint(weights) -> str:
    """SHA-256 over arrays, e.g. a model's weights (shapes, dtypes and bytes), as hex."""
    digest = hashlib.sha256()
    for w in weights:
        digest.update(f"{w.shape}{w.dtype}".encode())
        digest.update(w.tobytes())
    return digest.hexdigest()


def filterbanks_fingerprint(banks: dict) -> str:
    """SHA-256 over a ``ser.features.filterbanks`` dict, in name order."""
    return weights_fingerprint([np.asarray(banks[name]) for name in sorted(banks)])


def save_filterbanks(model_dir: Path, banks: dict) -> str:
    """Write ``filterbanks.npz`` into ``model_dir``; returns its fingerprint for the bundle."""
    write_npz(Path(model_dir) / FILTERBANKS, **banks)
    return filterbanks_fingerprint(banks)


def load_filterbanks(model_dir: Path, bundle: dict) -> dict:
    """The bundle's filterbanks; one-line refusal when missing, unreadable or not the bundle's."""
    path = Path(model_dir) / FILTERBANKS
    try:
        with np.load(path) as data:
            banks = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise DataError(f"{path}: not found (rebuild the model with `dvc repro train` or fetch it with `dvc pull`)") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{path}: not a readable .npz ({type(err).__name__}); rebuild with `dvc repro train`") from None
    if filterbanks_fingerprint(banks) != bundle["filterbanks_sha256"]:
        raise DataError(f"{path}: not the filterbanks {Path(model_dir) / 'bundle.json'} was trained with "
                        "(a stale or foreign file); rebuild both with `dvc repro train`")
    return banks


def make_bundle(params: dict, shapes: dict, priors: dict, fingerprint: str, filterbanks_sha256: str,
                encoder: dict | None = None) -> dict:
    """The bundle dict for a model trained with ``params`` on inputs of ``shapes``; ``encoder``
    is ``ser.encoder.bundle_entry`` when the model takes the encoder's embedding."""
    return {
        "bundle_version": BUNDLE_VERSION,
        "classes": list(params["labels"]["classes"]),
        "label_map": dict(params["labels"]["map"]),
        "sample_rate": params["audio"]["sample_rate"],
        "silence_top_db": params["prepare"]["silence_top_db"],
        "min_duration_s": params["prepare"]["min_duration_s"],
        "featurize": params["featurize"],
        "egemaps_feature_set": params["baseline"]["feature_set"],
        "normalize": {"mode": params["normalize"]["mode"], "prior_clips": params["normalize"]["prior_clips"],
                      "priors": priors},
        "inputs": list(shapes),
        "shapes": {name: [int(s) for s in shape] for name, shape in shapes.items()},
        "train": params["train"],
        "seed": params["seed"],
        "weights_sha256": fingerprint,
        "filterbanks_sha256": filterbanks_sha256,
        "encoder": encoder,
    }


def save_bundle(model_dir: Path, bundle: dict):
    write_json(Path(model_dir) / "bundle.json", bundle)


def load_bundle(model_dir: Path) -> dict:
    """Read ``bundle.json`` from ``model_dir``; one-line error if it is missing or malformed."""
    path = Path(model_dir) / "bundle.json"
    try:
        bundle = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: not found (train a model with `dvc repro` or fetch one with `dvc pull`)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(bundle, dict):
        raise DataError(f"{path}: must be a JSON object, not {type(bundle).__name__}")
    if bundle.get("bundle_version") != BUNDLE_VERSION:
        raise DataError(f"{path}: bundle_version {bundle.get('bundle_version')!r} is not {BUNDLE_VERSION} "
                        "(retrain with `dvc repro train`)")
    for key, kind in REQUIRED.items():
        if not isinstance(bundle.get(key), kind) or isinstance(bundle.get(key), bool):
            raise DataError(f"{path}: key {key!r} is missing or malformed (retrain with `dvc repro train`)")
    if "encoder" in bundle["inputs"]:
        entry = bundle.get("encoder")
        bad = next((k for k, kind in ENCODER_KEYS.items()
                    if not isinstance(entry, dict) or not isinstance(entry.get(k), kind)), None)
        if bad is not None:
            raise DataError(f"{path}: key 'encoder.{bad}' is missing or malformed (retrain with `dvc repro train`)")
    return bundle
