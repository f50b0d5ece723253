"""The model bundle: Keras weights plus everything prediction needs to reproduce the inputs.

``models/bundle.json`` records the label set, sample rate, feature and spectrogram settings and
the training params, so prediction never reads the current params.yaml.
"""

import json
from pathlib import Path

from .errors import DataError
from .io import write_json

BUNDLE_VERSION = 1


def make_bundle(params: dict, n_features: int, spec_shape) -> dict:
    """The bundle dict for a model trained with ``params``."""
    return {
        "bundle_version": BUNDLE_VERSION,
        "classes": list(params["labels"]["classes"]),
        "label_map": dict(params["labels"]["map"]),
        "silence_top_db": params["prepare"]["silence_top_db"],
        "sample_rate": params["audio"]["sample_rate"],
        "featurize": params["featurize"],
        "train": params["train"],
        "seed": params["seed"],
        "n_features": int(n_features),
        "spectrogram_shape": [int(s) for s in spec_shape],
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
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if bundle.get("bundle_version") != BUNDLE_VERSION:
        raise DataError(f"{path}: bundle_version {bundle.get('bundle_version')!r} is not {BUNDLE_VERSION}")
    return bundle
