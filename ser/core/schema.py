"""Reading nested settings with one-line errors: the checker ``ser.core.config`` validates
params.yaml with and ``ser.bundle`` a model bundle's schema with.

Also the declarations both check against: the allowed values of every choice, the audio
extensions, the corpora with parsers. Kept apart from ``ser.core.config`` (YAML) so that checking
a bundle at predict time imports nothing but the standard library.
"""

import difflib
import math
import re
from pathlib import PurePosixPath, PureWindowsPath

from ser.core.errors import ConfigError

# The allowed values of every choice in params.yaml (the modules that act on them document them).
FOLD_MODES = ("speaker", "random")                          # ser.data.splits.assign_folds
NORMALIZE_MODES = ("global", "utterance", "speaker", "corpus")  # ser.model.normalize
BALANCE_MODES = ("none", "speaker", "corpus")               # ser.model.training.sample_weights
INPUTS = ("features", "spectrogram", "egemaps", "encoder")  # ser.model.network.build_model
TRAIN_MODELS = ("network", "linear")                        # ser.model.network.build_model
LONE_FILE = ("self", "training")                            # ser.model.normalize.group_statistics
POOLINGS = ("mean", "mean_std", "std")                      # ser.features.encoder.pool
FEATURE_SETS = ("eGeMAPSv02", "ComParE_2016")               # ser.features.egemaps.functionals

# Audio files the pipeline and predict read (``manifest.extensions`` chooses among them).
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".aiff", ".aif")
# The corpora with a release-layout parser (``ser.data.corpora.CORPUS_PARSERS``, held equal by a test).
CORPORA = ("ravdess_speech", "ravdess_song", "crema_d", "tess", "savee", "jl_corpus", "esd", "asvp_esd")
# A corpus name is a folder under data/raw, a prefix of speaker ids and a key in the metrics.
CORPUS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
DEFAULT_TABLE = "labels.csv"   # a table corpus's labels, inside its folder


def relative_path_problem(text: str) -> str | None:
    """Why ``text`` cannot name a file inside a corpus folder, or None.

    Lexical only, on purpose: DVC may link the files in ``data/raw`` to its cache, so resolving
    links would call every pulled file "outside". Windows forms (``C:\\``, ``..\\``) count too.
    """
    if not text:
        return "is empty"
    if PurePosixPath(text).is_absolute() or PureWindowsPath(text).drive or PureWindowsPath(text).root:
        return "is absolute (paths are relative to the corpus folder)"
    if ".." in PurePosixPath(text).parts or ".." in PureWindowsPath(text).parts:
        return "leaves the corpus folder (..)"
    return None

# The values params.yaml and bundle.json both hold, each declared once: ``Checker.declared``
# checks a key against its entry here, for params at load and for a bundle before its use.
RANGES = {
    "sample_rate": {"low": 4000, "high": 96000, "integer": True},
    "silence_top_db": {"low": 0, "low_inclusive": False, "high": 120},
    "min_duration_s": {"low": 0, "high": 60},
    "loudness_dbfs": {"low": -40, "high": -6},
    "high_pass_hz": {"low": 0, "high": 100},
    "speech_threshold": {"low": 0, "low_inclusive": False, "high": 1, "high_inclusive": False},
    "min_speech_s": {"low": 0, "high": 10},
    "uncertain_below": {"low": 0, "high": 1},
    "group_min_clips": {"low": 2, "high": 10_000, "integer": True},
    "prior_clips": {"low": 0},
}


class _Missing(ConfigError):
    """A key is missing; ``stand_in`` is a look-alike unread key beside it (a misspelling?)."""

    def __init__(self, message, path, stand_in=None):
        super().__init__(message)
        self.path, self.stand_in = path, stand_in


def _initials(name: str) -> str:
    """``lr`` for ``learning_rate``: the abbreviation a key name is often confused with."""
    words = [w for w in name.split("_") if w]
    return "".join(w[0] for w in words) if len(words) > 1 else ""


def nearest(name: str, candidates) -> str | None:
    """The candidate ``name`` most likely meant (an abbreviation, a shortening or a misspelling), or None."""
    candidates = [str(c) for c in candidates]
    for candidate in candidates:
        if name == _initials(candidate) or _initials(name) == candidate or candidate.startswith(f"{name}_"):
            return candidate  # learning_rate for lr, hop for hop_length: too short for difflib
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return close[0] if close else None


class Checker:
    """Reads keys of a nested mapping and fails with one line naming the key.

    Every key read is recorded, so ``reject_unknown`` can refuse the keys nobody read (typos,
    keys of another version). A mapping read whole with ``get`` (such as ``labels.map``) is
    free-form: any key inside it is accepted.
    """

    def __init__(self, params, source):
        self.params = params
        self.source = source
        self.read = set()

    def fail(self, key, message):
        raise ConfigError(f"{self.source}: {key} {message}")

    def get(self, key):
        node, parts = self.params, key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                self._missing(node, parts[:depth], part, key)
            node = node[part]
        self.read.add(key)
        return node

    def _missing(self, node, parents, part, key):
        # A missing key is often there under a wrong name (`trian:`, `learning_rate:`): note the
        # look-alike, for validate to tell a misspelling from another real key.
        prefix = "".join(f"{p}." for p in parents)
        unread = [k for k in node if not self._is_known(f"{prefix}{k}")] if isinstance(node, dict) else []
        wrong = nearest(part, unread)
        raise _Missing(f"{self.source}: {key} is missing", f"{prefix}{part}",
                       None if wrong is None else f"{prefix}{wrong}")

    def _is_known(self, path: str) -> bool:
        """``path`` was read, or is a section holding a key that was."""
        return path in self.read or any(r.startswith(f"{path}.") for r in self.read)

    def known_paths(self) -> list:
        """Every key read and every section above one, sorted."""
        return sorted({".".join(r.split(".")[:depth]) for r in self.read for depth in range(1, r.count(".") + 2)})

    def unknown_keys(self) -> list:
        """Paths of the keys in ``params`` nobody read, in file order (sections not descended)."""
        found = []

        def walk(node, prefix):
            for k, value in node.items():
                path = f"{prefix}{k}"
                if path in self.read:
                    continue  # read whole: a value, or a free-form mapping
                if self._is_known(path) and isinstance(value, dict):
                    walk(value, f"{path}.")
                else:
                    found.append(path)

        walk(self.params, "")
        return found

    def reject_unknown(self):
        """Fail on the first key nobody read, suggesting the nearest known key."""
        unknown = self.unknown_keys()
        if unknown:
            self.fail(unknown[0], f"is not a known key ({self._suggest(unknown[0])})")

    def _suggest(self, path: str) -> str:
        """``did you mean X?`` for the nearest known key, else the keys the section has."""
        parent, _, name = path.rpartition(".")
        prefix = f"{parent}." if parent else ""
        known = self.known_paths()
        siblings = [k[len(prefix):] for k in known if k.startswith(prefix) and "." not in k[len(prefix):]]
        match = nearest(name, siblings)
        if match is not None:
            return f"did you mean {prefix}{match}?"
        # Put in the wrong section (train.n_fft): the same leaf name elsewhere.
        elsewhere = {k.rpartition(".")[2]: k for k in reversed(known)}
        match = nearest(name, elsewhere)
        if match is not None:
            return f"did you mean {elsewhere[match]}?"
        return f"known in {parent}: {', '.join(siblings)}" if parent else f"known: {', '.join(siblings)}"

    def number(self, key, low=None, high=None, integer=False, low_inclusive=True, high_inclusive=True):
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
        if high is not None and (value > high if high_inclusive else value >= high):
            self.fail(key, f"must be {'<=' if high_inclusive else '<'} {high} (got {value!r})")
        return value

    def _set(self, key, value):
        *parents, last = key.split(".")
        node = self.params
        for part in parents:
            node = node[part]
        node[last] = value

    def declared(self, key, name):
        """``number`` with the range ``RANGES[name]`` declares for it."""
        return self.number(key, **RANGES[name])

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
