"""Load and validate params.yaml once, before any stage does work.

Every problem is reported as a one-line ``ConfigError`` naming the offending key, e.g.
``params.yaml: train.lr must be > 0 (got -0.1)``. Keys the pipeline does not read (typos, keys of
another version) and keys written twice are refused too, the former with the nearest known key:
``params.yaml: train.learning_rate is not a known key (did you mean train.lr?)``.
"""

import math
from pathlib import Path

import numpy as np
import yaml

from ser.core.errors import ConfigError
from ser.core.schema import (
    AUDIO_EXTENSIONS,
    BALANCE_MODES,
    CORPORA,
    CORPUS_NAME,
    DEFAULT_TABLE,
    FEATURE_SETS,
    FOLD_MODES,
    INPUTS,
    LONE_FILE,
    NORMALIZE_MODES,
    POOLINGS,
    TRAIN_MODELS,
    Checker,
    _Missing,
    nearest,
    relative_path_problem,
)

# Whisper's input rate (ser.features.encoder.SAMPLE_RATE; a test holds them equal). Not imported from
# there: every stage reads params, and would then rerun whenever the encoder's code changes.
ENCODER_SAMPLE_RATE = 16000

AUGMENT_METHODS = ("gain", "eq", "pitch", "noise")
FEATURE_BLOCKS = ("mfcc", "chroma", "contrast", "zcr", "rms", "mel")
FEATURE_STATS = ("mean", "std", "min", "max")

# Spectral contrast's octave bands as ser.features asks ser.audio.dsp.contrast_bands for them (its
# defaults): 0-200 Hz, then 200-400 Hz ... and a top band from 6400 Hz up to Nyquist.
CONTRAST_FMIN_HZ = 200.0
CONTRAST_BANDS = 6
# Bounds that keep one clip's STFT in memory: each frame copies n_fft samples, so memory and time
# grow with n_fft / hop_length (librosa's default overlap is 4; 64 is already wasteful).
MAX_N_FFT = 65536
MAX_OVERLAP = 64
MAX_IMAGE_FRAMES = 4096  # the 2D CNN's input width; every clip's image is kept in memory together


def validate(params: dict, source: str = "params.yaml") -> dict:
    """Check every key the pipeline reads and refuse any other; return ``params`` unchanged or
    raise ``ConfigError``."""
    if not isinstance(params, dict):
        raise ConfigError(f"{source}: must be a mapping of sections")
    c = Checker(params, source)
    try:
        _check_keys(c)
    except _Missing as missing:
        raise ConfigError(_explain_missing(params, source, missing)) from None
    c.reject_unknown()
    _check_cross_keys(c)
    return params


def _explain_missing(params: dict, source: str, missing: "_Missing") -> str:
    """The message for a missing key: a misspelling of it, when the file has one.

    Whether the look-alike key (``trian`` for ``train``, ``learning_rate`` for ``lr``) is a
    misspelling or another real key is only known once every key was read: so validate again
    with it renamed. If that run misses the look-alike itself, it is a real key."""
    if missing.stand_in is None:
        return str(missing)
    try:
        _check_keys(Checker(_renamed(params, missing.stand_in, missing.path), source))
    except _Missing as again:
        # Missing something inside the renamed section (`trian:` without lr) still proves the
        # rename right; missing the look-alike itself, or anything else, does not.
        if not again.path.startswith(f"{missing.path}."):
            return str(missing)
    except ConfigError:
        # Failed before it could tell (the look-alike's value does not fit, say): say only what is certain.
        return str(missing)
    return f"{source}: {missing.stand_in} is not a known key (did you mean {missing.path}?)"


def _renamed(params: dict, old: str, new: str) -> dict:
    """A deep copy of ``params`` with the key at path ``old`` moved to its sibling path ``new``."""
    import copy

    out = copy.deepcopy(params)
    *parents, last = old.split(".")
    node = out
    for part in parents:
        node = node[part]
    node[new.rpartition(".")[2]] = node.pop(last)
    return out


def _check_keys(c: "Checker"):
    """Read and check every key of params.yaml, one at a time (no key against another)."""
    c.number("seed", low=0, high=2**32 - 1, integer=True)
    c.declared("audio.sample_rate", "sample_rate")

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

    tables = check_tables(c)
    check_corpora(c, list(CORPORA) + [name for name in tables if name not in CORPORA])
    c.number("manifest.max_files_per_corpus", low=0, integer=True)
    c.subset("manifest.extensions", AUDIO_EXTENSIONS)
    c.boolean("manifest.asvp_include_noisy")
    c.boolean("manifest.asvp_include_mixed")

    c.declared("prepare.silence_top_db", "silence_top_db")
    c.declared("prepare.min_duration_s", "min_duration_s")
    c.boolean("prepare.balance")
    c.number("prepare.max_per_emotion", low=0, integer=True)
    c.choice("prepare.split", FOLD_MODES)
    c.number("prepare.folds", low=2, high=100, integer=True)
    c.declared("prepare.loudness_dbfs", "loudness_dbfs")
    c.declared("prepare.high_pass_hz", "high_pass_hz")

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
    c.number("featurize.n_fft", low=64, high=MAX_N_FFT, integer=True)
    c.number("featurize.hop_length", low=16, integer=True)
    c.number("featurize.spectrogram.n_mels", low=8, high=256, integer=True)
    c.number("featurize.spectrogram.hop_length", low=16, integer=True)
    c.number("featurize.spectrogram.duration_s", low=0.25, high=30)
    c.number("featurize.n_examples", low=0, integer=True)

    c.choice("baseline.feature_set", FEATURE_SETS)
    c.number("baseline.svm_c", low=0, low_inclusive=False)
    c.number("baseline.linear_c", low=0, low_inclusive=False)

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

    c.declared("speech.threshold", "speech_threshold")
    c.declared("speech.min_speech_s", "min_speech_s")
    c.declared("calibration.uncertain_below", "uncertain_below")
    c.number("calibration.confident_accuracy", low=0, high=1)
    c.declared("calibration.group_min_clips", "group_min_clips")
    c.boolean("calibration.prior_correction")
    c.number("calibration.bins", low=2, high=100, integer=True)
    sizes = c.get("reference.sizes")
    if (not isinstance(sizes, list) or 0 not in sizes or "all" not in sizes or len(set(map(str, sizes))) != len(sizes)
            or not all(s == "all" or (isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= 1000)
                       for s in sizes)):
        c.fail("reference.sizes", f"must list distinct clip counts 0-1000 with 0 and all among them, e.g. "
                                  f"[0, 1, 3, 5, all] (got {sizes!r})")
    c.number("reference.draws", low=1, high=100, integer=True)

    c.choice("normalize.mode", NORMALIZE_MODES)
    c.declared("normalize.prior_clips", "prior_clips")
    c.declared("normalize.var_prior_clips", "prior_clips")
    c.number("normalize.file_share", low=0, high=1)
    c.number("normalize.small_groups", low=0, high=1)
    c.choice("normalize.lone_file", LONE_FILE)

    c.subset("train.inputs", INPUTS)
    c.choice("train.model", TRAIN_MODELS)
    c.choice("train.balance", BALANCE_MODES)
    c.number("train.lr", low=0, low_inclusive=False, high=1)
    c.number("train.epochs", low=1, integer=True)
    c.number("train.batch_size", low=1, high=65536, integer=True)
    c.number("train.dropout", low=0, high=0.95)
    c.number("train.filters", low=1, high=512, integer=True)   # doubled twice: 2048 channels at the last block
    c.number("train.dense_units", low=1, high=16384, integer=True)
    c.boolean("train.specaugment")
    c.number("train.specaugment_masks", low=0, high=10, integer=True)
    c.number("train.mixup", low=0)


def check_tables(c: "Checker") -> dict:
    """``manifest.tables``: corpus name -> its table's path inside ``data/raw/<name>`` (empty:
    ``labels.csv``). Inside the corpus folder so that the manifest stage's ``data/raw`` dependency
    covers the table, and ``dvc add`` of the folder shares it with the audio."""
    tables = c.get("manifest.tables")
    if not isinstance(tables, dict):
        c.fail("manifest.tables", f"must be a mapping corpus name -> table path, e.g. {{my_lab: labels.csv}} "
                                  f"or {{}} (got {tables!r})")
    for name, path in tables.items():
        if not isinstance(name, str) or not CORPUS_NAME.fullmatch(name):
            c.fail(f"manifest.tables.{name}", "is not a usable corpus name (a folder under data/raw: letters, "
                                              "digits, _ and -, starting with a letter or digit)")
        if path is None:
            continue
        problem = relative_path_problem(path) if isinstance(path, str) else "is not a path"
        if problem:
            c.fail(f"manifest.tables.{name}", f"must be the table's path inside data/raw/{name}, e.g. "
                                              f"{DEFAULT_TABLE} (got {path!r}: {problem})")
    return tables


def check_corpora(c: "Checker", known: list):
    """``manifest.corpora``: a non-empty list of built-in corpora and corpora declared in
    ``manifest.tables``, each once; an unknown one gets the nearest known name."""
    corpora = c.get("manifest.corpora")
    if not isinstance(corpora, list) or not corpora:
        c.fail("manifest.corpora", f"must be a non-empty list (got {corpora!r})")
    for item in corpora:
        if item not in known:
            meant = nearest(str(item), known)
            hint = f"did you mean {meant}? " if meant else ""
            c.fail("manifest.corpora", f"has unknown entry {item!r} ({hint}known: {', '.join(known)}; a corpus of "
                                       "your own is declared with its table in manifest.tables)")
    if len(set(corpora)) != len(corpora):
        c.fail("manifest.corpora", f"has duplicate entries ({corpora!r})")


def _check_cross_keys(c: "Checker"):
    """Keys that must agree with each other: the STFT with its hop lengths, and the sample rate
    with what the configured features and encoder need of it."""
    rate, n_fft = c.get("audio.sample_rate"), c.get("featurize.n_fft")
    for key in ("featurize.hop_length", "featurize.spectrogram.hop_length"):
        hop = c.get(key)
        if hop > n_fft:
            # A hop beyond the window skips audio between frames.
            c.fail(key, f"must be <= featurize.n_fft ({hop} > {n_fft})")
        if hop * MAX_OVERLAP < n_fft:
            c.fail(key, f"must be >= featurize.n_fft / {MAX_OVERLAP} = {n_fft / MAX_OVERLAP:g} (got {hop}): every "
                        f"frame copies n_fft samples, so memory and time grow with n_fft / hop_length")
    image_hop = c.get("featurize.spectrogram.hop_length")
    frames = spectrogram_width(rate, c.get("featurize.spectrogram.duration_s"), image_hop)
    if frames > MAX_IMAGE_FRAMES:
        c.fail("featurize.spectrogram.hop_length", f"{image_hop} makes the spectrogram image {frames} frames wide "
                                                   "(duration_s x audio.sample_rate / hop_length); at most "
                                                   f"{MAX_IMAGE_FRAMES}")

    if "contrast" in c.get("featurize.features"):
        top = CONTRAST_FMIN_HZ * 2 ** (CONTRAST_BANDS - 1)
        if top >= rate / 2:
            c.fail("audio.sample_rate", f"{rate} is too low for featurize.features: contrast (its top octave band "
                                        f"starts at {top:g} Hz, which needs the Nyquist frequency, sample_rate / 2, "
                                        f"above it; {rate} Hz gives {rate / 2:g} Hz: use a sample rate above "
                                        f"{2 * top:g} or drop contrast)")
        band = empty_contrast_band(rate, n_fft)
        if band is not None:
            c.fail("featurize.n_fft", f"{n_fft} is too short for featurize.features: contrast at audio.sample_rate "
                                      f"{rate} (its {band[0]:g}-{band[1]:g} Hz band gets no FFT bin; bins are "
                                      f"sample_rate / n_fft = {rate / n_fft:g} Hz apart)")
    for key, source in (("featurize.n_mels", "the log-mel and mfcc blocks"),
                        ("featurize.spectrogram.n_mels", "the spectrogram image")):
        empty = empty_mel_filters(rate, n_fft, c.get(key))
        if empty:
            c.fail(key, f"{c.get(key)} leaves {empty} mel filters without an FFT bin at featurize.n_fft {n_fft} and "
                        f"audio.sample_rate {rate}: dead rows in {source} (lower it or raise featurize.n_fft)")

    if "encoder" in c.get("train.inputs") and rate != ENCODER_SAMPLE_RATE:
        c.fail("audio.sample_rate", f"must be {ENCODER_SAMPLE_RATE} when train.inputs has encoder (Whisper's encoder "
                                    f"takes {ENCODER_SAMPLE_RATE // 1000} kHz audio; got {rate})")


def spectrogram_width(sample_rate: int, duration_s: float, hop_length: int) -> int:
    """Frames of the spectrogram image (``ser.features.handcrafted.spectrogram_frames``)."""
    return 1 + int(round(duration_s * sample_rate)) // hop_length


def empty_contrast_band(sample_rate: int, n_fft: int) -> tuple | None:
    """The first octave band of spectral contrast (above the lowest) without an STFT bin, which
    ``ser.audio.dsp.contrast_bands`` cannot use, or None. Bands above Nyquist are the caller's check."""
    freq = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)  # exactly ser.audio.dsp's bins
    edges = CONTRAST_FMIN_HZ * 2.0 ** np.arange(CONTRAST_BANDS + 1)
    for low, high in zip(edges[:-1], edges[1:]):
        if low < sample_rate / 2 and not np.any((freq >= low) & (freq <= high)):
            return float(low), float(high)
    return None


def mel_edges_hz(sample_rate: int, n_mels: int) -> np.ndarray:
    """The ``n_mels + 2`` edge frequencies of librosa's default (Slaney) mel filterbank, 0 Hz to
    Nyquist (``librosa.mel_frequencies``), without importing librosa."""
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, math.log(6.4) / 27.0
    top = sample_rate / 2
    top_mel = top / f_sp if top < min_log_hz else min_log_mel + math.log(top / min_log_hz) / logstep
    mels = np.linspace(0.0, top_mel, n_mels + 2)
    return np.where(mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), f_sp * mels)


def empty_mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> int:
    """How many of librosa's mel filters get no STFT bin (all-zero rows: librosa only warns),
    counted as librosa does: a filter whose lower edge is 0 Hz is not counted."""
    edges = mel_edges_hz(sample_rate, n_mels)
    freq = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    # A triangle has weight only strictly between its outer edges.
    inside = (freq[None, :] > edges[:-2, None]) & (freq[None, :] < edges[2:, None])
    return int(np.sum(~inside.any(axis=1) & (edges[:-2] != 0)))


class _DuplicateKey(yaml.YAMLError):
    """A key repeated in one mapping of the file (``line`` is 1-based, ``key`` its dotted path)."""

    def __init__(self, line, key):
        super().__init__(f"line {line}: duplicate key {key}")
        self.line, self.key = line, key


def first_duplicate(node, path: str = ""):
    """``(line, dotted path)`` of the first key repeated within one mapping of a composed YAML
    node tree, or None. PyYAML itself keeps the last value silently."""
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            child = f"{path}.{key}" if path else str(key)
            if key is not None and key != "<<":  # `<<` merges an anchor: may repeat
                if key in seen:
                    return key_node.start_mark.line + 1, child
                seen.add(key)
            found = first_duplicate(value_node, child)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = first_duplicate(item, f"{path}[{i}]")
            if found:
                return found
    return None


MAX_EXPANDED_NODES = 100_000   # params.yaml has ~200 values; anchors may repeat a block, not explode


class _TooLarge(yaml.YAMLError):
    """Anchors and aliases that expand into more values than any params file has."""


def expanded_size(node, sizes: dict | None = None) -> int:
    """How many nodes the YAML tree holds once every alias is expanded, computed once per node
    (linear in the file, even for a "billion laughs" whose expansion is exponential)."""
    sizes = {} if sizes is None else sizes
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1   # a node that contains itself counts once (PyYAML builds such cycles)
    children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                else node.value if isinstance(node, yaml.SequenceNode) else [])
    sizes[id(node)] = min(MAX_EXPANDED_NODES + 1, 1 + sum(expanded_size(child, sizes) for child in children))
    return sizes[id(node)]


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a repeated key instead of keeping its last value, and
    aliases that expand beyond ``MAX_EXPANDED_NODES`` (checked before anything walks the tree)."""

    def construct_document(self, node):
        if expanded_size(node) > MAX_EXPANDED_NODES:
            raise _TooLarge()
        found = first_duplicate(node)
        if found:
            raise _DuplicateKey(*found)
        return super().construct_document(node)


def load_params(path="params.yaml") -> dict:
    """Read and validate a params file."""
    path = Path(path)
    try:
        params = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found (run from the project root)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not the params file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}); "
                          "save it as UTF-8") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a params file") from None
    except _TooLarge:
        raise ConfigError(f"{path}: its anchors and aliases expand to more than {MAX_EXPANDED_NODES} values; "
                          "write the settings out instead") from None
    except _DuplicateKey as err:
        raise ConfigError(f"{path}: line {err.line}: duplicate key {err.key}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML") from None
    return validate(params, str(path))
