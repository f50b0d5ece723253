"""Audio operations: decoding, silence removal, augmentation, and packing clips into one file."""

import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

from .dsp import non_silent_intervals
from .errors import DataError
from .io import write_npz


def probe(path) -> str | None:
    """Return None if ``path`` looks like a readable, non-empty audio file, else a short reason."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return "empty file"
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError, OSError) as err:
        return f"not readable as audio ({str(err).splitlines()[0][:120]})"
    if info.frames == 0:
        return "no audio frames"
    return None


def _reason(err: Exception) -> str:
    """``Type: first line of the message`` (just the type when the message is empty)."""
    text = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def load(path, sample_rate: int) -> np.ndarray:
    """Decode any sample rate, mono or multichannel, to mono float32 at ``sample_rate``.

    libsndfile (wav, flac, ogg, mp3) is read directly, which is what ``librosa.load`` does
    first anyway, minus its overhead (and its imports); anything else goes through
    ``librosa.load``'s fallbacks. Channels are averaged and resampling uses soxr_hq, as
    ``librosa.load`` would.
    Raises ``DataError`` naming the file when it cannot be decoded or holds no samples.
    """
    first_reason = None
    try:
        try:
            data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
            y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
            if file_rate != sample_rate and y.size:
                y = resample(y, file_rate, sample_rate)
        except sf.LibsndfileError as err:
            first_reason = _reason(err)  # libsndfile says what is wrong; the fallbacks rarely do
            import librosa

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # audioread fallback warnings: the error below is the message
                y, _ = librosa.load(str(path), sr=sample_rate, mono=True)
    except Exception as err:  # decoders raise many types (LibsndfileError, EOFError, NoBackendError, ...)
        raise DataError(f"{path}: cannot decode audio ({first_reason or _reason(err)})") from None
    if y.size == 0:
        raise DataError(f"{path}: no audio samples")
    if not np.all(np.isfinite(y)):
        raise DataError(f"{path}: audio contains NaN or infinite samples")
    return np.ascontiguousarray(y, dtype=np.float32)


def resample(y: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """``y`` at ``target_rate`` with soxr's high-quality filter, ``ceil(len * ratio)`` samples
    long: ``librosa.resample(res_type="soxr_hq")`` without importing librosa."""
    import soxr

    n_out = int(np.ceil(len(y) * target_rate / orig_rate))
    out = soxr.resample(y, orig_rate, target_rate, quality="soxr_hq")
    return np.pad(out, (0, max(0, n_out - len(out))))[:n_out].astype(y.dtype)


def remove_silence(y: np.ndarray, top_db: float) -> np.ndarray:
    """Keep only the non-silent intervals (quieter than ``top_db`` below the peak is silence).

    Digital silence has no peak to be relative to: it is all silence, and nothing is kept."""
    if is_silent(y):
        return y[:0]
    intervals = non_silent_intervals(y, top_db)
    if len(intervals) == 0:
        return y[:0]
    return np.concatenate([y[start:end] for start, end in intervals])


def is_silent(y: np.ndarray, floor: float = 1e-4) -> bool:
    """True when the peak amplitude is below ``floor`` (digital silence or near it)."""
    return y.size == 0 or float(np.max(np.abs(y))) < floor


def clean(y: np.ndarray, sample_rate: int, top_db: float, min_duration_s: float) -> np.ndarray:
    """The one cleaning rule for training and prediction: remove silent stretches and reject
    clips that are silent or shorter than ``min_duration_s`` seconds of sound.

    Raises ``DataError`` with the reason (no file name: callers add it)."""
    if is_silent(y):
        raise DataError("all silence")
    y = remove_silence(y, top_db)
    if len(y) < min_duration_s * sample_rate:
        raise DataError(f"shorter than prepare.min_duration_s={min_duration_s} after silence removal "
                        f"({len(y) / sample_rate:.2f} s of sound)")
    return y


def add_noise(y: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise at a signal-to-noise ratio of ``snr_db`` decibels."""
    signal_power = float(np.mean(y.astype(np.float64) ** 2))
    noise_power = signal_power / (10.0 ** (snr_db / 10.0))
    noise = rng.standard_normal(y.shape) * np.sqrt(noise_power)
    return (y + noise).astype(np.float32)


def pitch_shift(y: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """Shift pitch by ``semitones`` keeping duration (librosa phase vocoder + resampling)."""
    import librosa

    return librosa.effects.pitch_shift(y, sr=sample_rate, n_steps=semitones).astype(np.float32)


def apply_gain(y: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale by ``gain_db`` decibels, clipping at full scale as a real recorder would."""
    return np.clip(y * np.float32(10.0 ** (gain_db / 20.0)), -1.0, 1.0).astype(np.float32)


def band_limit(y: np.ndarray, sample_rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """Band-pass between ``low_hz`` and ``high_hz`` (4th-order Butterworth): a different
    microphone, room or telephone line. ``high_hz`` at or above Nyquist means high-pass only."""
    from scipy.signal import butter, sosfilt

    nyquist = sample_rate / 2
    if high_hz >= nyquist * 0.99:
        sos = butter(4, low_hz, btype="highpass", fs=sample_rate, output="sos")
    else:
        sos = butter(4, [low_hz, high_hz], btype="bandpass", fs=sample_rate, output="sos")
    return sosfilt(sos, y).astype(np.float32)


def to_int16(y: np.ndarray) -> np.ndarray:
    """Float [-1, 1] to 16-bit PCM, clipping anything beyond full scale."""
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)


def to_float(pcm: np.ndarray) -> np.ndarray:
    """16-bit PCM to float32 in [-1, 1]."""
    return pcm.astype(np.float32) / 32768.0


def save_pack(path, clips) -> None:
    """Store many clips as one .npz (concatenated int16 PCM plus offsets): one file, not thousands."""
    clips = [to_int16(c) if c.dtype != np.int16 else c for c in clips]
    lengths = np.array([len(c) for c in clips], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    audio = np.concatenate(clips) if clips else np.zeros(0, dtype=np.int16)
    write_npz(path, audio=audio, offsets=offsets)


class Pack:
    """Read access to a pack written by ``save_pack``: ``pack[i]`` is clip i as float32."""

    def __init__(self, path):
        with np.load(path) as data:
            self.audio = data["audio"]
            self.offsets = data["offsets"]

    def __len__(self):
        return len(self.offsets) - 1

    def __getitem__(self, i) -> np.ndarray:
        return to_float(self.audio[self.offsets[i]:self.offsets[i + 1]])

    def pcm(self, i) -> np.ndarray:
        """Clip i as stored (int16), for copying between packs without requantising."""
        return self.audio[self.offsets[i]:self.offsets[i + 1]]
