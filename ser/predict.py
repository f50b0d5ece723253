"""Prediction with a trained model bundle: the same cleaning and feature code as training.

A bundle is a folder (``models/``) with ``bundle.json``, ``model.keras`` and ``model.onnx``,
all written by the train stage and stamped with one weights fingerprint. ``Predictor`` uses
the ONNX model through ONNX Runtime when it is there, so labelling files never has to import
TensorFlow. Inputs are normalised by speaker group (``ser.normalize``) exactly as in training.
Features come from the bundle's filterbanks (``ser.bundle.load_filterbanks``), openSMILE's
C library and the bundle's exported encoder (``encoder.onnx``, ONNX Runtime), so labelling a
file imports neither librosa, scipy.signal, scikit-learn, pandas nor TensorFlow.
"""

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from . import audio, encoder
from .baseline import functionals as egemaps
from .bundle import ENCODER_FILE, load_bundle, load_filterbanks
from .errors import DataError
from .features import extract


def load_keras_model(model_dir: Path):
    """``(keras model, bundle)`` from ``model_dir``, loaded with Keras safe_mode on; refuses
    weights that are not the ones ``bundle.json`` was written for."""
    bundle = load_bundle(model_dir)
    path = Path(model_dir) / "model.keras"
    if not path.is_file():
        raise DataError(f"{path}: not found (train with `dvc repro` or fetch with `dvc pull`)")
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from .bundle import weights_fingerprint
    from .export import check_fingerprint

    try:
        model = keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # keras raises ValueError/OSError/zipfile errors for damaged files
        raise DataError(f"{path}: cannot load Keras model ({type(err).__name__})") from None
    check_fingerprint(weights_fingerprint(model.get_weights()), bundle, path)
    return model, bundle


def clean(y: np.ndarray, bundle: dict, name) -> np.ndarray:
    """The training pipeline's cleaning (``ser.audio.clean``) with the bundle's settings."""
    try:
        return audio.clean(y, bundle["sample_rate"], bundle["silence_top_db"], bundle["min_duration_s"])
    except DataError as err:
        raise DataError(f"{name}: {err}") from None


def segment_bounds(n_samples: int, sample_rate: int, seconds: float | None):
    """``[(start, end)]`` sample ranges of consecutive ``seconds``-long segments (one if None)."""
    if not seconds:
        return [(0, n_samples)]
    step = max(1, int(round(seconds * sample_rate)))
    return [(s, min(s + step, n_samples)) for s in range(0, n_samples, step)]


@dataclass
class FileResult:
    """Outcome for one input file: per-segment inputs (or an error) and later probabilities."""

    path: str
    error: str | None = None
    segments: list = field(default_factory=list)   # (start_s, end_s)
    skipped_segments: int = 0
    inputs: dict = field(default_factory=dict)     # input name -> [segments, ...] raw arrays
    group: str = ""                                # clips normalised together (one speaker)
    normalization: str = ""                        # which statistics normalised the inputs
    probabilities: np.ndarray | None = None        # [segments, classes]


def bundle_encoder(model_dir: Path, bundle: dict, banks: dict, threads: int = 0):
    """The bundle's exported encoder (``encoder.onnx``), opened once per process and checked
    against the bundle's encoder fingerprint."""
    entry = bundle["encoder"]
    return encoder.runner(Path(model_dir) / ENCODER_FILE, banks, entry["max_frames"], entry["fingerprint"], threads)


def analyse_file(path: str, bundle: dict, banks: dict, segment_s: float | None = None, model_dir=None,
                 threads: int = 0) -> FileResult:
    """Decode, clean and featurise one file (per segment if ``segment_s``) with the bundle's
    settings and filterbanks (and its encoder, from ``model_dir``); errors become
    ``FileResult.error`` so one bad file never stops a batch."""
    result = FileResult(path)
    try:
        sr = bundle["sample_rate"]
        y = audio.load(path, sr)
        inputs = bundle["inputs"]
        per_input = {name: [] for name in inputs}
        run = bundle_encoder(model_dir, bundle, banks, threads) if "encoder" in inputs else None
        bounds = segment_bounds(len(y), sr, segment_s)
        for start, end in bounds:
            try:
                # Training featurises cleaned clips stored as 16-bit PCM: round-trip the same way,
                # so a clip gets the very features it would have had in training.
                clip = audio.to_float(audio.to_int16(clean(y[start:end], bundle, path)))
            except DataError:
                if len(bounds) == 1:
                    raise
                result.skipped_segments += 1  # a silent or tiny stretch inside a long recording
                continue
            # Only what the model takes: the feature vector alone costs ~0.4 s of a cold start.
            if "features" in inputs or "spectrogram" in inputs:
                vector, image = extract(clip, sr, bundle["featurize"], banks)
                for name, value in (("features", vector), ("spectrogram", image)):
                    if name in inputs:
                        per_input[name].append(value)
            if "egemaps" in inputs:
                per_input["egemaps"].append(egemaps(clip, sr, bundle["egemaps_feature_set"]))
            if run is not None:
                entry = bundle["encoder"]
                per_input["encoder"].append(encoder.select(run.pooled(clip), entry["layers"], entry["pooling"]))
            result.segments.append((round(start / sr, 3), round(end / sr, 3)))
        if not result.segments:
            raise DataError(f"{path}: every segment is silent or shorter than the analysis window")
        result.inputs = {name: np.stack(values) for name, values in per_input.items()}
    except DataError as err:
        result.error = str(err)
    except MemoryError:
        result.error = f"{path}: too large to decode in memory"
    return result


GROUPINGS = ("file", "folder", "all")


def group_key(path: str, grouping: str) -> str:
    """Which clips are one speaker: ``file`` (a file and its segments), ``folder`` (every file
    in a folder) or ``all`` (every input)."""
    if grouping == "file":
        return str(path)
    if grouping == "folder":
        return str(Path(path).parent)
    return "all inputs"


def normalise_results(results, bundle: dict, groups) -> None:
    """Normalise every good result's inputs in place, group by group, as in training.

    ``groups`` gives one key per result; all segments of the results sharing a key form one
    group of clips (one speaker) under speaker or corpus normalisation.
    """
    from . import normalize

    norm = bundle["normalize"]
    good = [(r, g) for r, g in zip(results, groups) if r.error is None]
    if not good:
        return
    keys = np.concatenate([[g] * len(r.segments) for r, g in good])
    for name in bundle["inputs"]:
        stacked = np.concatenate([r.inputs[name] for r, _ in good])
        normalised, used = normalize.normalise(stacked, keys, norm["mode"], norm["priors"][name], norm["prior_clips"])
        offset = 0
        for r, g in good:
            r.inputs[name] = normalised[offset:offset + len(r.segments)]
            offset += len(r.segments)
    for r, g in good:
        r.group = g
        r.normalization = normalize.describe(norm["mode"], {g: used[g]} if g in used else used)


class Predictor:
    """Class probabilities from a model bundle, via ONNX Runtime if exported, else Keras."""

    def __init__(self, model_dir="models", backend: str = "auto"):
        self.model_dir = Path(model_dir)
        self.bundle = load_bundle(self.model_dir)
        self.filterbanks = load_filterbanks(self.model_dir, self.bundle)
        self.classes = self.bundle["classes"]
        onnx_path = self.model_dir / "model.onnx"
        if backend == "onnx" and not onnx_path.is_file():
            raise DataError(f"{onnx_path}: not found (rebuild it with `dvc repro train`)")
        if backend != "onnx" and not (self.model_dir / "model.keras").is_file() and not onnx_path.is_file():
            raise DataError(f"{self.model_dir / 'model.keras'}: not found (train with `dvc repro` or `dvc pull`)")
        if "encoder" in self.bundle["inputs"] and not (self.model_dir / ENCODER_FILE).is_file():
            raise DataError(f"{self.model_dir / ENCODER_FILE}: not found (rebuild it with `dvc repro train`)")
        self.backend = "onnx" if backend == "onnx" or (backend == "auto" and onnx_path.is_file()) else "keras"
        self._runner = None  # loaded on first use: after feature workers have forked, never before

    def _load(self):
        if self.backend == "onnx":
            import onnxruntime as ort

            from .export import check_fingerprint, onnx_fingerprint

            onnx_path = self.model_dir / "model.onnx"
            options = ort.SessionOptions()
            options.log_severity_level = 3
            try:
                session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
            except Exception as err:  # onnxruntime raises its own exception types for bad files
                raise DataError(f"{onnx_path}: cannot load ONNX model ({type(err).__name__})") from None
            check_fingerprint(onnx_fingerprint(session), self.bundle, onnx_path)
            self.input_names = [i.name for i in session.get_inputs()]
            return lambda feeds: session.run(None, feeds)[0]
        model, _ = load_keras_model(self.model_dir)
        self.input_names = [t.name.split(":")[0] for t in model.inputs]
        return lambda feeds: model.predict(feeds, verbose=0)

    def check(self):
        """Load the model now (and verify its fingerprint) rather than at the first batch."""
        if self._runner is None:
            self._runner = self._load()

    def probabilities(self, arrays: dict, batch_size: int = 256) -> np.ndarray:
        """Softmax outputs ``[n, classes]`` for stacked, normalised model inputs (name -> array)."""
        self.check()
        n = len(next(iter(arrays.values())))
        out = [self._runner({name: arrays[name][i:i + batch_size].astype(np.float32) for name in self.input_names})
               for i in range(0, n, batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)

    def analyse(self, paths, segment_s=None, grouping: str = "file", groups=None, progress: bool = True):
        """Featurise ``paths`` (in parallel for many files), normalise them by group and fill in
        probabilities. ``groups`` (one key per path, e.g. a corpus's speakers) overrides ``grouping``."""
        from .parallel import pmap

        paths = [str(p) for p in paths]
        if "encoder" in self.bundle["inputs"]:
            bundle_encoder(self.model_dir, self.bundle, self.filterbanks)  # a stale encoder: one refusal, not one per file
        work = partial(analyse_file, bundle=self.bundle, banks=self.filterbanks, segment_s=segment_s,
                       model_dir=self.model_dir)
        # The first file runs here: it loads openSMILE's library once, and forked workers inherit it.
        results = [work(p) for p in paths[:1]]
        if len(paths) > 8:
            # One ONNX Runtime thread per worker process: the workers already use every core.
            results += pmap(partial(work, threads=1), paths[1:], desc="predict", chunksize=8, disable=not progress)
        else:  # no worker start-up cost for a handful of files
            results += [work(p) for p in paths[1:]]
        keys = list(groups) if groups is not None else [group_key(p, grouping) for p in paths]
        normalise_results(results, self.bundle, keys)
        good = [r for r in results if r.error is None]
        if good:
            probs = self.probabilities({name: np.concatenate([r.inputs[name] for r in good])
                                        for name in self.bundle["inputs"]})
            offset = 0
            for r in good:
                r.probabilities = probs[offset:offset + len(r.segments)]
                offset += len(r.segments)
        return results
