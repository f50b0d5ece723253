"""Prediction with a trained model bundle: the same cleaning and feature code as training.

A bundle is a folder (``models/``) with ``bundle.json`` and ``model.keras`` (and, after the
``export`` stage, ``model.onnx``). ``Predictor`` uses the ONNX model through ONNX Runtime
when it is there, so labelling files never has to import TensorFlow.
"""

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from . import audio
from .bundle import load_bundle
from .errors import DataError
from .features import extract


def load_keras_model(model_dir: Path):
    """``(keras model, bundle)`` from ``model_dir``, loaded with Keras safe_mode on."""
    bundle = load_bundle(model_dir)
    path = Path(model_dir) / "model.keras"
    if not path.is_file():
        raise DataError(f"{path}: not found (train with `dvc repro` or fetch with `dvc pull`)")
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    try:
        model = keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # keras raises ValueError/OSError/zipfile errors for damaged files
        raise DataError(f"{path}: cannot load Keras model ({type(err).__name__})") from None
    return model, bundle


def clean(y: np.ndarray, bundle: dict, name) -> np.ndarray:
    """Training-time cleaning for a decoded clip: reject silence, remove silent stretches, and
    reject what is left if it is shorter than one analysis window."""
    if audio.is_silent(y):
        raise DataError(f"{name}: all silence")
    y = audio.remove_silence(y, bundle["silence_top_db"])
    window = bundle["featurize"]["n_fft"]
    if len(y) < window:
        raise DataError(f"{name}: shorter than the analysis window "
                        f"({len(y) / bundle['sample_rate'] * 1000:.0f} ms of sound, need "
                        f"{window / bundle['sample_rate'] * 1000:.0f} ms)")
    return y


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
    features: np.ndarray | None = None
    spectrogram: np.ndarray | None = None
    probabilities: np.ndarray | None = None        # [segments, classes]


def analyse_file(path: str, bundle: dict, segment_s: float | None = None) -> FileResult:
    """Decode, clean and featurise one file (per segment if ``segment_s``); errors become
    ``FileResult.error`` so one bad file never stops a batch."""
    result = FileResult(path)
    try:
        sr = bundle["sample_rate"]
        y = audio.load(path, sr)
        cfg = bundle["featurize"]
        feats, specs = [], []
        bounds = segment_bounds(len(y), sr, segment_s)
        for start, end in bounds:
            try:
                clip = clean(y[start:end], bundle, path)
            except DataError:
                if len(bounds) == 1:
                    raise
                result.skipped_segments += 1  # a silent or tiny stretch inside a long recording
                continue
            f, s = extract(clip, sr, cfg)
            feats.append(f)
            specs.append(s)
            result.segments.append((round(start / sr, 3), round(end / sr, 3)))
        if not feats:
            raise DataError(f"{path}: every segment is silent or shorter than the analysis window")
        result.features, result.spectrogram = np.stack(feats), np.stack(specs)
    except DataError as err:
        result.error = str(err)
    except MemoryError:
        result.error = f"{path}: too large to decode in memory"
    return result


class Predictor:
    """Class probabilities from a model bundle, via ONNX Runtime if exported, else Keras."""

    def __init__(self, model_dir="models", backend: str = "auto"):
        self.model_dir = Path(model_dir)
        self.bundle = load_bundle(self.model_dir)
        self.classes = self.bundle["classes"]
        onnx_path = self.model_dir / "model.onnx"
        if backend == "onnx" and not onnx_path.is_file():
            raise DataError(f"{onnx_path}: not found (run the export stage: `dvc repro export`)")
        if backend != "onnx" and not (self.model_dir / "model.keras").is_file() and not onnx_path.is_file():
            raise DataError(f"{self.model_dir / 'model.keras'}: not found (train with `dvc repro` or `dvc pull`)")
        self.backend = "onnx" if backend == "onnx" or (backend == "auto" and onnx_path.is_file()) else "keras"
        self._runner = None  # loaded on first use: after feature workers have forked, never before

    def _load(self):
        if self.backend == "onnx":
            import onnxruntime as ort

            onnx_path = self.model_dir / "model.onnx"
            options = ort.SessionOptions()
            options.log_severity_level = 3
            try:
                session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
            except Exception as err:  # onnxruntime raises its own exception types for bad files
                raise DataError(f"{onnx_path}: cannot load ONNX model ({type(err).__name__})") from None
            self.input_names = [i.name for i in session.get_inputs()]
            return lambda feeds: session.run(None, feeds)[0]
        model, _ = load_keras_model(self.model_dir)
        self.input_names = [t.name.split(":")[0] for t in model.inputs]
        return lambda feeds: model.predict(feeds, verbose=0)

    def probabilities(self, features: np.ndarray, spectrogram: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Softmax outputs ``[n, classes]`` for stacked model inputs."""
        if self._runner is None:
            self._runner = self._load()
        arrays = {"features": features.astype(np.float32), "spectrogram": spectrogram.astype(np.float32)}
        out = [self._runner({name: arrays[name][i:i + batch_size] for name in self.input_names})
               for i in range(0, len(features), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)

    def analyse(self, paths, segment_s=None, progress: bool = True) -> list[FileResult]:
        """Featurise ``paths`` (in parallel for many files) and fill in probabilities."""
        from .parallel import pmap

        work = partial(analyse_file, bundle=self.bundle, segment_s=segment_s)
        paths = [str(p) for p in paths]
        # The first file runs here: it imports librosa and warms numba's compiled helpers once,
        # and forked workers inherit that instead of each paying ~2 s for it.
        results = [work(p) for p in paths[:1]]
        if len(paths) > 8:
            results += pmap(work, paths[1:], desc="predict", chunksize=8, disable=not progress)
        else:  # no worker start-up cost for a handful of files
            results += [work(p) for p in paths[1:]]
        good = [r for r in results if r.error is None]
        if good:
            probs = self.probabilities(np.concatenate([r.features for r in good]),
                                       np.concatenate([r.spectrogram for r in good]))
            offset = 0
            for r in good:
                r.probabilities = probs[offset:offset + len(r.segments)]
                offset += len(r.segments)
        return results
