"""Signal effects for augmentation: gain, band limit (EQ), noise at an SNR, pitch shift."""

import numpy as np


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
