"""Cleaning, shared by training and prediction: DC and rumble removed, silences stripped, one loudness."""

import numpy as np

from ser.audio.dsp import non_silent_intervals
from ser.core.errors import DataError


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


HIGH_PASS_HZ = 30.0   # below the lowest voice (~60 Hz): removes DC offset and rumble, not speech


def remove_dc(y: np.ndarray, sample_rate: int, cutoff_hz: float = HIGH_PASS_HZ) -> np.ndarray:
    """``y`` without its DC offset and what lies below ``cutoff_hz``, as a speech front end
    does: the mean is subtracted, then a zero-phase high-pass with the magnitude of a 2nd-order
    Butterworth applied twice (``scipy.signal.sosfiltfilt``'s response), done with NumPy's FFT
    because importing ``scipy.signal`` would cost prediction's cold start ~0.5 s.

    The clip is extended at both ends by its odd reflection (as ``sosfiltfilt`` pads), so the
    ends do not ring. A constant offset comes out as exactly nothing (to rounding). With
    ``cutoff_hz`` 0 only the mean is removed."""
    y64 = np.asarray(y, np.float64)
    if y64.size < 2:
        return np.zeros_like(np.asarray(y, np.float32))
    y64 = y64 - y64.mean()
    if cutoff_hz <= 0:
        return y64.astype(np.float32)   # the mean alone
    pad = min(len(y64) - 1, int(sample_rate / cutoff_hz))   # one period of the cutoff each side
    ext = np.concatenate([2 * y64[0] - y64[pad:0:-1], y64, 2 * y64[-1] - y64[-2:-pad - 2:-1]])
    n = 1 << (len(ext) - 1).bit_length()                    # a power of two: pocketfft's fast case
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    with np.errstate(divide="ignore"):
        response = 1.0 / (1.0 + (cutoff_hz / freqs) ** 4)   # |H|^2 of a 2nd-order Butterworth; 0 at DC
    out = np.fft.irfft(np.fft.rfft(ext, n) * response, n)[pad:pad + len(y64)]
    return out.astype(np.float32)


def clean(y: np.ndarray, sample_rate: int, top_db: float, min_duration_s: float, loudness_dbfs: float,
          high_pass_hz: float = HIGH_PASS_HZ) -> np.ndarray:
    """The one cleaning rule for training and prediction: remove DC offset and rumble below
    ``high_pass_hz`` (``remove_dc``; ``prepare.high_pass_hz``), remove silent stretches, reject
    clips that are silent or shorter than ``min_duration_s`` seconds of sound, and bring what is left to ``loudness_dbfs``
    (``normalize_level``).

    Every step is relative to the clip's own level (silence is ``top_db`` below its peak), so a
    voice recorded at any gain or DC offset comes out the same. Raises ``DataError`` with the
    reason (no file name: callers add it)."""
    if is_silent(y):
        raise DataError("all silence")
    y = remove_dc(y, sample_rate, high_pass_hz)
    if is_silent(y):
        raise DataError("all silence (a constant offset only)")
    y = remove_silence(y, top_db)
    if len(y) < min_duration_s * sample_rate:
        raise DataError(f"shorter than prepare.min_duration_s={min_duration_s} after silence removal "
                        f"({len(y) / sample_rate:.2f} s of sound)")
    return normalize_level(y, loudness_dbfs)


PEAK_LIMIT = 0.99   # below 16-bit full scale, so storing a clip as PCM never clips it


def normalize_level(y: np.ndarray, rms_dbfs: float) -> np.ndarray:
    """``y`` scaled to an RMS of ``rms_dbfs`` dB re full scale, or less where that would push
    its peak past ``PEAK_LIMIT``. Only a gain: level invariance without changing the sound.

    RMS (of a clip already stripped of silence) rather than peak: one click would set a peak
    normalization. The target only sets headroom; any fixed one makes the level irrelevant."""
    y = np.asarray(y, np.float32)
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if rms == 0.0:
        return y
    gain = min(10.0 ** (rms_dbfs / 20.0) / rms, PEAK_LIMIT / peak)
    return (y * np.float32(gain)).astype(np.float32)
