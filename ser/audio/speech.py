"""Speech presence: is there a voice in this audio at all?

The emotion model answers for any input, so white noise or a tone would get an emotion with
high confidence. Before the model, a voice-activity detector measures how many seconds of a
clip are voiced; too few and the answer is ``no speech``.

The detector is Silero VAD (MIT), chosen over webrtcvad because it rejects stationary noise,
hiss and tones (webrtcvad's GMM fires on broadband noise), and because its ONNX model runs on
the ONNX Runtime that prediction already uses. Only the model file is read from the pinned
``silero-vad`` package (installed without dependencies: its Python code needs torch, which is
never imported). The model is stateful: it reads 32 ms windows (512 samples at 16 kHz) in
order, each with the 64 samples before it as context, and returns a speech probability per
window.
"""

import importlib.util
from pathlib import Path

import numpy as np

from ser.core.errors import DataError

SAMPLE_RATE = 16000
WINDOW = 512            # samples per decision at 16 kHz (32 ms)
CONTEXT = 64            # samples of the previous window the model sees with each window
MODEL_FILE = "silero_vad_16k_op15.onnx"


def model_path() -> Path:
    """The Silero VAD ONNX model inside the installed ``silero-vad`` package (not imported)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("silero-vad is not installed (run `bash scripts/setup.sh`)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / MODEL_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found (reinstall with `bash scripts/setup.sh`)")
    return path


class Detector:
    """Silero VAD on ONNX Runtime, one thread (a clip's windows are sequential anyway)."""

    def __init__(self, path: Path | None = None):
        from ser.core.onnx import open_session

        self.session = open_session(path or model_path(), "the VAD model", threads=1, inter_threads=1)

    def probabilities(self, y: np.ndarray) -> np.ndarray:
        """Speech probability of each 32 ms window of ``y`` (16 kHz mono; the last window is
        zero-padded)."""
        n = -(-len(y) // WINDOW)
        padded = np.zeros(CONTEXT + n * WINDOW, np.float32)
        padded[CONTEXT:CONTEXT + len(y)] = y
        state = np.zeros((2, 1, 128), np.float32)
        rate = np.array(SAMPLE_RATE, np.int64)
        out = np.empty(n, np.float32)
        for i in range(n):
            start = i * WINDOW
            frame = padded[start:start + CONTEXT + WINDOW][None]
            prob, state = self.session.run(None, {"input": frame, "state": state, "sr": rate})
            out[i] = prob[0, 0]
        return out


_DETECTOR = None


def detector() -> Detector:
    """One detector per process (loading it costs ~70 ms)."""
    global _DETECTOR
    if _DETECTOR is None:
        _DETECTOR = Detector()
    return _DETECTOR


def voiced_seconds(probabilities: np.ndarray, threshold: float) -> float:
    """Seconds of windows whose speech probability is above ``threshold``."""
    return float(np.count_nonzero(probabilities > threshold) * WINDOW / SAMPLE_RATE)


def voiced_spans(probabilities: np.ndarray, threshold: float, seconds: float | None = None) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of each run of consecutive windows above ``threshold`` (the last
    one ends at ``seconds``, the audio's length, when given: its window was zero-padded)."""
    voiced = np.concatenate([[False], probabilities > threshold, [False]])
    edges = np.flatnonzero(np.diff(voiced.astype(np.int8)))
    step = WINDOW / SAMPLE_RATE
    spans = [(float(a * step), float(b * step)) for a, b in zip(edges[::2], edges[1::2])]
    if seconds is not None and spans:
        spans[-1] = (spans[-1][0], min(spans[-1][1], seconds))
    return spans


CHANNEL_THRESHOLD = 0.5  # the threshold ``decode.voice_channel`` picks a channel with (params' default)
LEVEL_DBFS = -23.0       # the RMS level the detector is given, whatever the recording's gain


def speech_probabilities(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """The detector's speech probability per 32 ms window of ``y``: mono audio as recorded (any
    level, any DC offset, silences and all). The detector is given it without DC
    (``cleaning.remove_dc``) at ``LEVEL_DBFS``, at 16 kHz. Called on the audio as recorded, never
    on the silence-stripped clip: stripping the pauses takes away the context Silero needs,
    and real speech came out as 0 s."""
    from ser.audio.cleaning import normalize_level, remove_dc
    from ser.audio.dsp import resample

    y = normalize_level(remove_dc(y, sample_rate), LEVEL_DBFS)
    if sample_rate != SAMPLE_RATE:
        y = resample(y, sample_rate, SAMPLE_RATE)
    return detector().probabilities(y)


def speech_seconds(y: np.ndarray, sample_rate: int, threshold: float) -> float:
    """Voiced seconds in ``y`` (``speech_probabilities`` above ``threshold``)."""
    return voiced_seconds(speech_probabilities(y, sample_rate), threshold)
