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

One fingerprint covers everything that decides an answer: ``bundle_sha256`` is the SHA-256 of
the bundle's own content (classes, cleaning, features, normalisation statistics, temperature,
thresholds) which in turn holds the fingerprints of the weights, the filterbanks and the
encoder; ``model.onnx`` carries it too. ``load_bundle`` checks the schema (types and ranges)
and then the fingerprint, so an edited ``bundle.json`` is refused in one line, never used.
"""

import hashlib
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from .calibration import WAYS
from .errors import ConfigError, DataError
from .io import write_json, write_npz

BUNDLE_VERSION = 6
FILTERBANKS = "filterbanks.npz"
ENCODER_FILE = "encoder.onnx"


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
                calibration: dict, encoder: dict | None = None) -> dict:
    """The bundle dict for a model trained with ``params`` on inputs of ``shapes``;
    ``calibration`` is ``{"group_min_clips": n, way: {"temperature", "uncertain_below"}}`` for
    every way of ``ser.calibration.WAYS`` (``stages/train.py``: the cv stage's whole-speaker
    temperature, the loco stage's lone-file and reference ones), ``encoder`` is
    ``ser.encoder.bundle_entry`` when the model takes the encoder's embedding. Ends with its
    own fingerprint, ``bundle_sha256``."""
    bundle = {
        "bundle_version": BUNDLE_VERSION,
        "classes": list(params["labels"]["classes"]),
        "label_map": dict(params["labels"]["map"]),
        "sample_rate": params["audio"]["sample_rate"],
        "silence_top_db": params["prepare"]["silence_top_db"],
        "min_duration_s": params["prepare"]["min_duration_s"],
        "loudness_dbfs": params["prepare"]["loudness_dbfs"],
        "high_pass_hz": params["prepare"]["high_pass_hz"],
        "speech": dict(params["speech"]),
        "calibration": {"group_min_clips": int(calibration["group_min_clips"]),
                        **{way: {"temperature": float(calibration[way]["temperature"]),
                                 "uncertain_below": float(calibration[way]["uncertain_below"]),
                                 **({"class_prior": [float(v) for v in calibration[way]["class_prior"]]}
                                    if calibration[way].get("class_prior") else {})}
                           for way in WAYS}},
        "featurize": params["featurize"],
        "egemaps_feature_set": params["baseline"]["feature_set"],
        "normalize": {"mode": params["normalize"]["mode"], "prior_clips": params["normalize"]["prior_clips"],
                      "var_prior_clips": params["normalize"]["var_prior_clips"],
                      "lone_file": params["normalize"]["lone_file"], "priors": priors},
        "inputs": list(shapes),
        "shapes": {name: [int(s) for s in shape] for name, shape in shapes.items()},
        "train": params["train"],
        "seed": params["seed"],
        "weights_sha256": fingerprint,
        "filterbanks_sha256": filterbanks_sha256,
        "encoder": encoder,
    }
    bundle["bundle_sha256"] = content_fingerprint(bundle)
    return bundle


def content_fingerprint(bundle: dict) -> str:
    """SHA-256 of the bundle's content (every key but ``bundle_sha256``), as canonical JSON."""
    content = {k: v for k, v in bundle.items() if k != "bundle_sha256"}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def save_bundle(model_dir: Path, bundle: dict):
    write_json(Path(model_dir) / "bundle.json", bundle)


def load_bundle(model_dir: Path) -> dict:
    """Read ``bundle.json`` from ``model_dir`` and verify it: its schema (``check_schema``),
    then its fingerprint. One-line error if it is missing, malformed or edited."""
    path = Path(model_dir) / "bundle.json"
    try:
        bundle = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: not found (name the model folder with --model, or train a model with `dvc repro` "
                        "or fetch one with `dvc pull`)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    except (ValueError, RecursionError) as err:   # a 5001-digit number, nesting past Python's limit
        raise DataError(f"{path}: not a bundle ({str(err).splitlines()[0][:80]})") from None
    if not isinstance(bundle, dict):
        raise DataError(f"{path}: must be a JSON object, not {type(bundle).__name__}")
    if bundle.get("bundle_version") != BUNDLE_VERSION:
        raise DataError(f"{path}: bundle_version {bundle.get('bundle_version')!r} is not {BUNDLE_VERSION} "
                        "(retrain with `dvc repro train`)")
    check_schema(bundle, path)
    if content_fingerprint(bundle) != bundle["bundle_sha256"]:
        raise DataError(f"{path}: its content does not match its fingerprint bundle_sha256 (edited after training?); "
                        "retrain with `dvc repro train` or restore it with `dvc checkout models`")
    return bundle


def check_schema(bundle: dict, path: Path):
    """Every key prediction reads, with its type and range; ``DataError`` naming the file and
    the key. ``bundle.json`` is written by training, so anything off means it was edited (or
    damaged): this turns that into one line before any of it is used."""
    from .schema import INPUTS, LONE_FILE, NORMALIZE_MODES, POOLINGS, Checker

    c = Checker(bundle, str(path))
    try:
        classes = c.get("classes")
        if (not isinstance(classes, list) or len(classes) < 2 or len(set(map(str, classes))) != len(classes)
                or not all(isinstance(x, str) and x for x in classes)):
            c.fail("classes", f"must be a list of at least two distinct emotion names (got {classes!r})")
        mapping = c.get("label_map")
        if not isinstance(mapping, dict) or not all(isinstance(v, str) and v in classes for v in mapping.values()):
            c.fail("label_map", "must map labels to the bundle's classes")
        c.number("sample_rate", low=4000, high=96000, integer=True)
        c.number("silence_top_db", low=0, low_inclusive=False, high=120)
        c.number("min_duration_s", low=0, high=60)
        c.number("loudness_dbfs", low=-40, high=-6)
        c.number("high_pass_hz", low=0, high=100)
        c.number("speech.threshold", low=0, low_inclusive=False, high=1, high_inclusive=False)
        c.number("speech.min_speech_s", low=0, high=10)
        c.number("calibration.group_min_clips", low=2, high=10_000, integer=True)
        for way in WAYS:
            c.number(f"calibration.{way}.temperature", low=0.05, high=20)
            c.number(f"calibration.{way}.uncertain_below", low=0, high=1)
            prior = c.get(f"calibration.{way}").get("class_prior")
            if prior is not None and (not isinstance(prior, list) or len(prior) != len(classes) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1 for v in prior)):
                c.fail(f"calibration.{way}.class_prior", f"must be {len(classes)} probabilities > 0, one per class")
        for key in ("featurize", "train"):
            if not isinstance(c.get(key), dict):
                c.fail(key, "must be a mapping")
        c.choice("normalize.mode", NORMALIZE_MODES)
        c.number("normalize.prior_clips", low=0)
        c.number("normalize.var_prior_clips", low=0)
        c.choice("normalize.lone_file", LONE_FILE)
        inputs = c.subset("inputs", INPUTS)
        shapes = c.get("shapes")
        if not isinstance(shapes, dict) or set(shapes) != set(inputs):
            c.fail("shapes", f"must give one shape per input ({', '.join(inputs)})")
        for name in inputs:
            shape = shapes[name]
            if not isinstance(shape, list) or not shape or not all(
                    isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 100_000 for d in shape):
                c.fail(f"shapes.{name}", f"must be a list of positive sizes (got {shape!r})")
            for stat in ("mean", "var"):
                values = c.get(f"normalize.priors.{name}.{stat}")
                if (not isinstance(values, list) or len(values) != shape[0]
                        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                   and (stat == "mean" or v >= 0) for v in values)):
                    c.fail(f"normalize.priors.{name}.{stat}", f"must be {shape[0]} finite numbers"
                           + (" >= 0" if stat == "var" else ""))
        for key in ("weights_sha256", "filterbanks_sha256", "bundle_sha256"):
            if not isinstance(c.get(key), str) or len(c.get(key)) != 64:
                c.fail(key, "must be a SHA-256 hex digest")
        if "encoder" in inputs:
            n_layers = c.number("encoder.n_layers", low=1, high=64, integer=True)
            for key in ("weights", "model_sha256", "fingerprint"):
                if not isinstance(c.get(f"encoder.{key}"), str):
                    c.fail(f"encoder.{key}", "must be a string")
            for key in ("n_mels", "d_model", "max_frames"):
                c.number(f"encoder.{key}", low=1, high=100_000, integer=True)
            layers = c.get("encoder.layers")
            if (not isinstance(layers, list) or not layers or len(set(layers)) != len(layers) or not all(
                    isinstance(k, int) and not isinstance(k, bool) and 0 <= k <= n_layers for k in layers)):
                c.fail("encoder.layers", f"must be distinct layer numbers 0-{n_layers} (got {layers!r})")
            c.choice("encoder.pooling", POOLINGS)
    except ConfigError as err:
        raise DataError(f"{err} (an edited or damaged bundle: retrain with `dvc repro train`)") from None
