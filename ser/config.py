"""Load and validate params.yaml once, before any stage does work.

Every problem is reported as a one-line ``ConfigError`` naming the offending key, e.g.
``params.yaml: train.lr must be > 0 (got -0.1)``.
"""

import math
from pathlib import Path

import yaml

from .corpora import CORPUS_PARSERS
from .errors import ConfigError

# The allowed values of every choice in params.yaml (the modules that act on them document them).
FOLD_MODES = ("speaker", "random")                          # ser.splits.assign_folds
NORMALIZE_MODES = ("global", "utterance", "speaker", "corpus")  # ser.normalize
BALANCE_MODES = ("none", "speaker", "corpus")               # ser.training.sample_weights
INPUTS = ("features", "spectrogram", "egemaps", "encoder")  # ser.model.build_model
POOLINGS = ("mean", "mean_std", "std")                      # ser.encoder.pool
FEATURE_SETS = ("eGeMAPSv02", "ComParE_2016")               # ser.baseline.functionals

AUGMENT_METHODS = ("gain", "eq", "pitch", "noise")
FEATURE_BLOCKS = ("mfcc", "chroma", "contrast", "zcr", "rms", "mel")
FEATURE_STATS = ("mean", "std", "min", "max")


class _Checker:
    def __init__(self, params, source):
        self.params = params
        self.source = source

    def fail(self, key, message):
        raise ConfigError(f"{self.source}: {key} {message}")

    def get(self, key):
        node = self.params
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                self.fail(key, "is missing")
            node = node[part]
        return node

    def number(self, key, low=None, high=None, integer=False, low_inclusive=True):
        value = self.get(key)
        if isinstance(value, str):
            # YAML 1.1 reads `1e-4` (no dot) as a string: accept what is plainly a number.
            try:
                value = float(value.strip())
            except ValueError:
                self.fail(key, f"must be a number (got {value!r})")
            value = int(value) if integer and value.is_integer() else value
            self._set(key, value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(key, f"must be a number (got {value!r})")
        if integer and int(value) != value:
            self.fail(key, f"must be an integer (got {value!r})")
        if low is not None and (value < low if low_inclusive else value <= low):
            self.fail(key, f"must be {'>=' if low_inclusive else '>'} {low} (got {value!r})")
        if high is not None and value > high:
            self.fail(key, f"must be <= {high} (got {value!r})")
        return value

    def _set(self, key, value):
        *parents, last = key.split(".")
        node = self.params
        for part in parents:
            node = node[part]
        node[last] = value

    def boolean(self, key):
        value = self.get(key)
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false (got {value!r})")
        return value

    def choice(self, key, allowed):
        value = self.get(key)
        if value not in allowed:
            self.fail(key, f"must be one of {', '.join(allowed)} (got {value!r})")
        return value

    def subset(self, key, allowed, allow_empty=False):
        value = self.get(key)
        if not isinstance(value, list) or (not value and not allow_empty):
            self.fail(key, f"must be a {'' if allow_empty else 'non-empty '}list (got {value!r})")
        for item in value:
            if item not in allowed:
                self.fail(key, f"has unknown entry {item!r} (known: {', '.join(allowed)})")
        if len(set(value)) != len(value):
            self.fail(key, f"has duplicate entries ({value!r})")
        return value


def validate(params: dict, source: str = "params.yaml") -> dict:
    """Check every key the pipeline reads; return ``params`` unchanged or raise ``ConfigError``."""
    if not isinstance(params, dict):
        raise ConfigError(f"{source}: must be a mapping of sections")
    c = _Checker(params, source)
    c.number("seed", low=0, high=2**32 - 1, integer=True)
    c.number("audio.sample_rate", low=4000, high=96000, integer=True)

    classes = c.get("labels.classes")
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(x, str) and x for x in classes):
        c.fail("labels.classes", f"must be a list of at least two emotion names (got {classes!r})")
    if len(set(classes)) != len(classes):
        c.fail("labels.classes", f"has duplicate entries ({classes!r})")
    mapping = c.get("labels.map")
    if not isinstance(mapping, dict):
        c.fail("labels.map", f"must be a mapping corpus label -> class (got {mapping!r})")
    for corpus_label, target in mapping.items():
        if target not in classes:
            c.fail(f"labels.map.{corpus_label}", f"maps to unknown emotion {target!r} (labels.classes: {', '.join(classes)})")

    c.subset("manifest.corpora", list(CORPUS_PARSERS))
    c.number("manifest.max_files_per_corpus", low=0, integer=True)
    exts = c.get("manifest.extensions")
    if not isinstance(exts, list) or not exts or not all(isinstance(e, str) and e.startswith(".") for e in exts):
        c.fail("manifest.extensions", f"must be a list like ['.wav', '.flac'] (got {exts!r})")
    c.boolean("manifest.asvp_include_noisy")
    c.boolean("manifest.asvp_include_mixed")

    c.number("prepare.silence_top_db", low=0, low_inclusive=False)
    c.number("prepare.min_duration_s", low=0)
    c.boolean("prepare.balance")
    c.number("prepare.max_per_emotion", low=0, integer=True)
    c.choice("prepare.split", FOLD_MODES)
    c.number("prepare.folds", low=2, high=100, integer=True)

    c.boolean("augment.before_split")
    c.number("augment.copies", low=0, high=10, integer=True)
    c.subset("augment.methods", AUGMENT_METHODS, allow_empty=True)
    c.number("augment.gain_db", low=0, high=40)
    c.number("augment.pitch_semitones", low=0, high=12)
    snr = c.get("augment.noise_snr_db")
    if (not isinstance(snr, list) or len(snr) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                              and -20 <= v <= 80 for v in snr) or snr[0] > snr[1]):
        c.fail("augment.noise_snr_db", f"must be [low, high] in dB with -20 <= low <= high <= 80 (got {snr!r})")

    c.subset("featurize.features", FEATURE_BLOCKS)
    c.subset("featurize.stats", FEATURE_STATS)
    c.number("featurize.n_mfcc", low=1, high=128, integer=True)
    c.number("featurize.n_mels", low=8, high=256, integer=True)
    n_fft = c.number("featurize.n_fft", low=64, integer=True)
    hop = c.number("featurize.hop_length", low=16, integer=True)
    if hop > n_fft:
        c.fail("featurize.hop_length", f"must be <= featurize.n_fft ({hop} > {n_fft})")
    c.number("featurize.spectrogram.n_mels", low=8, high=256, integer=True)
    c.number("featurize.spectrogram.hop_length", low=16, integer=True)
    c.number("featurize.spectrogram.duration_s", low=0.25, high=30)
    c.number("featurize.n_examples", low=0, integer=True)

    c.choice("baseline.feature_set", FEATURE_SETS)
    c.number("baseline.svm_c", low=0, low_inclusive=False)

    weights = c.get("encoder.weights")
    if not isinstance(weights, str) or not weights.strip():
        c.fail("encoder.weights", f"must be `pinned` or a CTranslate2 Whisper model folder (got {weights!r})")
    layers = c.get("encoder.layers")
    if (not isinstance(layers, list) or not layers
            or not all(isinstance(k, int) and not isinstance(k, bool) and 0 <= k <= 64 for k in layers)):
        c.fail("encoder.layers", f"must be a non-empty list of layer numbers 0-64, e.g. [2, 3] (got {layers!r})")
    if len(set(layers)) != len(layers):
        c.fail("encoder.layers", f"has duplicate entries ({layers!r})")
    c.choice("encoder.pooling", POOLINGS)

    c.choice("normalize.mode", NORMALIZE_MODES)
    c.number("normalize.prior_clips", low=0)
    c.number("normalize.file_share", low=0, high=1)

    c.subset("train.inputs", INPUTS)
    c.choice("train.balance", BALANCE_MODES)
    c.number("train.lr", low=0, low_inclusive=False, high=1)
    c.number("train.epochs", low=1, integer=True)
    c.number("train.batch_size", low=1, integer=True)
    c.number("train.dropout", low=0, high=0.95)
    c.number("train.filters", low=1, integer=True)
    c.number("train.dense_units", low=1, integer=True)
    c.boolean("train.specaugment")
    c.number("train.specaugment_masks", low=0, high=10, integer=True)
    c.number("train.mixup", low=0)
    return params


def load_params(path="params.yaml") -> dict:
    """Read and validate a params file."""
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run from the project root)") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML") from None
    return validate(params, str(path))
