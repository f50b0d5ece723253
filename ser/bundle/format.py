"""The model bundle: weights plus everything prediction needs to reproduce the inputs.

``models/bundle.json`` records the label set, sample rate, cleaning, feature settings, the
normalization mode with its training statistics, the training params and a fingerprint of
the exact weights; prediction never reads the current params.yaml, and refuses model files
whose weights do not match the fingerprint. ``models/filterbanks.npz`` holds the matrices the
features apply (``ser.features.handcrafted.filterbanks``, and Whisper's window and mel filterbank when the
model uses the encoder), so prediction never imports librosa; the bundle carries their
fingerprint too. ``models/encoder.onnx`` is the pretrained encoder (every layer; the bundle's
``encoder.layers`` and ``encoder.pooling`` select from its output), stamped with the bundle's
``encoder.fingerprint`` (the weights' SHA-256 and the layers exported).

One fingerprint covers everything that decides an answer: ``bundle_sha256`` is the SHA-256 of
the bundle's own content (classes, cleaning, features, normalization statistics, temperature,
thresholds) which in turn holds the fingerprints of the weights, the filterbanks and the
encoder; ``model.onnx`` carries it too. ``load_bundle`` checks the schema (types and ranges)
and then the fingerprint, so an edited ``bundle.json`` is refused in one line, never used.
"""

import copy
import hashlib
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ser.core.errors import ConfigError, DataError
from ser.core.files import write_json, write_npz
from ser.model.calibration import WAYS, way_for

BUNDLE_VERSION = 6
FILTERBANKS = "filterbanks.npz"
ENCODER_FILE = "encoder.onnx"


@dataclass(frozen=True)
class Cleaning:
    """How a recording is cleaned before features (``ser.audio.cleaning.clean``), as in training."""

    sample_rate: int
    silence_top_db: float
    min_duration_s: float
    loudness_dbfs: float
    high_pass_hz: float


@dataclass(frozen=True)
class SpeechCheck:
    """The speech check before the model: Silero's ``threshold`` and the voiced seconds a clip needs."""

    threshold: float
    min_speech_s: float


@dataclass(frozen=True)
class Analysis:
    """Everything analysing one file needs (``ser.app.analysis.analyse_file``): cleaning, the
    speech check and the model's raw inputs with their settings. No weights, no statistics."""

    cleaning: Cleaning
    speech: SpeechCheck
    inputs: tuple[str, ...]
    featurize: dict
    egemaps_feature_set: str
    encoder: dict | None   # the encoder's ``export_info`` and the layers and pooling used, when the model takes it

    @property
    def sample_rate(self) -> int:
        return self.cleaning.sample_rate


@dataclass(frozen=True)
class Normalization:
    """Speaker normalization as trained (``ser.model.normalize``): the mode, the shrinkage toward
    the training priors (``priors``: input name -> ``{"mean", "var"}``) and what a lone file uses."""

    mode: str
    prior_clips: float
    var_prior_clips: float
    lone_file: str
    priors: dict

    @property
    def by_group(self) -> bool:
        """True when a clip's group (its speaker or corpus) decides its statistics."""
        return self.mode in ("speaker", "corpus")


@dataclass(frozen=True)
class Bundle:
    """A trained model's ``bundle.json``, checked (``check_schema``, then ``bundle_sha256``) and
    frozen. ``content`` is the JSON as written: the fingerprint covers it."""

    classes: tuple[str, ...]
    label_map: dict
    analysis: Analysis
    normalization: Normalization
    calibration: dict   # ``{"group_min_clips", way: {"temperature", "uncertain_below"[, "class_prior"]}}``
    shapes: dict
    train: dict
    seed: int
    weights_sha256: str
    filterbanks_sha256: str
    bundle_sha256: str
    content: dict = field(repr=False, compare=False)

    @classmethod
    def from_content(cls, content: dict) -> "Bundle":
        """The ``Bundle`` of a checked ``bundle.json`` (``check_schema`` first: this trusts it)."""
        c = copy.deepcopy(content)
        return cls(
            classes=tuple(c["classes"]), label_map=c["label_map"],
            analysis=Analysis(
                cleaning=Cleaning(c["sample_rate"], c["silence_top_db"], c["min_duration_s"], c["loudness_dbfs"],
                                  c["high_pass_hz"]),
                speech=SpeechCheck(c["speech"]["threshold"], c["speech"]["min_speech_s"]),
                inputs=tuple(c["inputs"]), featurize=c["featurize"], egemaps_feature_set=c["egemaps_feature_set"],
                encoder=c["encoder"]),
            normalization=Normalization(**c["normalize"]), calibration=c["calibration"], shapes=c["shapes"],
            train=c["train"], seed=c["seed"], weights_sha256=c["weights_sha256"],
            filterbanks_sha256=c["filterbanks_sha256"], bundle_sha256=c["bundle_sha256"], content=content)

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.analysis.inputs

    @property
    def sample_rate(self) -> int:
        return self.analysis.sample_rate

    def way(self, voice_clips: int) -> dict:
        """``{"temperature", "uncertain_below"[, "class_prior"]}`` for a clip normalized with
        ``voice_clips`` other clips of its voice (``ser.model.calibration.way_for``): none (a lone
        file), a few (a reference, a small folder) or a whole speaker. Under global or utterance
        normalization a clip's group does not matter: the whole-speaker one."""
        if not self.normalization.by_group:
            return self.calibration["group"]
        return self.calibration[way_for(voice_clips, self.calibration["group_min_clips"])]

    @property
    def uncertain_below(self) -> float:
        """The whole-speaker threshold: what a table of answers is read against."""
        return self.calibration["group"]["uncertain_below"]


def weights_fingerprint(weights) -> str:
    """SHA-256 over arrays, e.g. a model's weights (shapes, dtypes and bytes), as hex."""
    digest = hashlib.sha256()
    for w in weights:
        digest.update(f"{w.shape}{w.dtype}".encode())
        digest.update(w.tobytes())
    return digest.hexdigest()


def filterbanks_fingerprint(banks: dict) -> str:
    """SHA-256 over a ``ser.features.handcrafted.filterbanks`` dict, in name order."""
    return weights_fingerprint([np.asarray(banks[name]) for name in sorted(banks)])


def save_filterbanks(model_dir: Path, banks: dict) -> str:
    """Write ``filterbanks.npz`` into ``model_dir``; returns its fingerprint for the bundle."""
    write_npz(Path(model_dir) / FILTERBANKS, **banks)
    return filterbanks_fingerprint(banks)


def load_filterbanks(model_dir: Path, bundle: Bundle) -> dict:
    """The bundle's filterbanks; one-line refusal when missing, unreadable or not the bundle's."""
    path = Path(model_dir) / FILTERBANKS
    try:
        with np.load(path) as data:
            banks = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise DataError(f"{path}: not found (rebuild the model with `dvc repro train` or fetch it with `dvc pull`)") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{path}: not a readable .npz ({type(err).__name__}); rebuild with `dvc repro train`") from None
    if filterbanks_fingerprint(banks) != bundle.filterbanks_sha256:
        raise DataError(f"{path}: not the filterbanks {Path(model_dir) / 'bundle.json'} was trained with "
                        "(a stale or foreign file); rebuild both with `dvc repro train`")
    return banks


def make_bundle(params: dict, shapes: dict, priors: dict, fingerprint: str, filterbanks_sha256: str,
                calibration: dict, encoder: dict | None = None) -> dict:
    """The bundle dict for a model trained with ``params`` on inputs of ``shapes``;
    ``calibration`` is ``{"group_min_clips": n, way: {"temperature", "uncertain_below"}}`` for
    every way of ``ser.model.calibration.WAYS`` (``stages/train.py``: the cv stage's whole-speaker
    temperature, the loco stage's lone-file and reference ones), ``encoder`` is the encoder's
    ``export_info`` with its layers and pooling when the model takes the encoder's embedding.
    Ends with its own fingerprint, ``bundle_sha256``."""
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


def load_bundle(model_dir: Path) -> Bundle:
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
    return Bundle.from_content(bundle)


def check_schema(bundle: dict, path: Path):
    """Every key prediction reads, with its type and range; ``DataError`` naming the file and
    the key. ``bundle.json`` is written by training, so anything off means it was edited (or
    damaged): this turns that into one line before any of it is used."""
    from ser.core.schema import INPUTS, LONE_FILE, NORMALIZE_MODES, POOLINGS, Checker

    c = Checker(bundle, str(path))
    try:
        classes = c.get("classes")
        if (not isinstance(classes, list) or len(classes) < 2 or len(set(map(str, classes))) != len(classes)
                or not all(isinstance(x, str) and x for x in classes)):
            c.fail("classes", f"must be a list of at least two distinct emotion names (got {classes!r})")
        mapping = c.get("label_map")
        if not isinstance(mapping, dict) or not all(isinstance(v, str) and v in classes for v in mapping.values()):
            c.fail("label_map", "must map labels to the bundle's classes")
        c.declared("sample_rate", "sample_rate")
        c.declared("silence_top_db", "silence_top_db")
        c.declared("min_duration_s", "min_duration_s")
        c.declared("loudness_dbfs", "loudness_dbfs")
        c.declared("high_pass_hz", "high_pass_hz")
        c.declared("speech.threshold", "speech_threshold")
        c.declared("speech.min_speech_s", "min_speech_s")
        c.declared("calibration.group_min_clips", "group_min_clips")
        for way in WAYS:
            c.number(f"calibration.{way}.temperature", low=0.05, high=20)
            c.declared(f"calibration.{way}.uncertain_below", "uncertain_below")
            prior = c.get(f"calibration.{way}").get("class_prior")
            if prior is not None and (not isinstance(prior, list) or len(prior) != len(classes) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1 for v in prior)):
                c.fail(f"calibration.{way}.class_prior", f"must be {len(classes)} probabilities > 0, one per class")
        for key in ("featurize", "train"):
            if not isinstance(c.get(key), dict):
                c.fail(key, "must be a mapping")
        c.choice("normalize.mode", NORMALIZE_MODES)
        c.declared("normalize.prior_clips", "prior_clips")
        c.declared("normalize.var_prior_clips", "prior_clips")
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
