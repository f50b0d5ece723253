"""Signal primitives in plain NumPy, each the same computation as its librosa namesake.

Why not call librosa: importing ``librosa.feature`` or ``librosa.effects`` pulls in scipy.signal,
scikit-learn and numba's JIT, 1.9 s of a 2.7 s ``python -m ser predict`` cold start. Training
and prediction both use these functions, so the two can never drift apart; what the
functions need from librosa (the window and the mel and chroma matrices) is computed once by
``ser.features.handcrafted.filterbanks`` and shipped in the model bundle. ``tests/test_dsp.py`` holds
every function equal to librosa on real and synthetic audio.
"""

import numpy as np

AMIN_POWER = 1e-10  # librosa's floor under power before taking logs


def frames(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Read-only view ``[n_frames, frame_length]`` of frames every ``hop_length`` samples."""
    return np.lib.stride_tricks.sliding_window_view(y, frame_length)[::hop_length]


def stft_magnitude(y: np.ndarray, window: np.ndarray, hop_length: int) -> np.ndarray:
    """``|STFT|`` ``[1 + n_fft // 2, n_frames]`` of centred, zero-padded frames (``librosa.stft``
    with ``center=True, pad_mode="constant"``), computed in float64 and stored as float32."""
    n_fft = len(window)
    padded = np.pad(y, n_fft // 2)
    spectrum = np.fft.rfft(window * frames(padded, n_fft, hop_length), axis=-1)
    # librosa stores frames as columns of a Fortran-ordered complex64 matrix: the transpose of
    # C-ordered rows is exactly that layout, so later sums over frequency add in the same order.
    return np.abs(spectrum.astype(np.complex64)).T


def power_to_db(power: np.ndarray, ref: float = 1.0, top_db: float | None = 80.0) -> np.ndarray:
    """``10 log10(power / ref)`` with librosa's floor of 1e-10, clipped to ``top_db`` below the peak."""
    db = 10.0 * np.log10(np.maximum(AMIN_POWER, power))
    db -= 10.0 * np.log10(np.maximum(AMIN_POWER, ref))
    if top_db is not None:
        db = np.maximum(db, db.max() - top_db)
    return db


def project(basis: np.ndarray, spectrum: np.ndarray) -> np.ndarray:
    """Filterbank ``basis [bands, bins]`` applied to ``spectrum [bins, frames]`` (as librosa's chroma)."""
    return np.einsum("cf,ft->ct", basis, spectrum, optimize=True)


def melspectrogram(power: np.ndarray, mel_basis: np.ndarray) -> np.ndarray:
    """Mel filterbank ``[mels, bins]`` applied to ``power [bins, frames]``. The operands go in
    librosa's order, which gives its C-ordered result, so statistics over time sum as there."""
    return np.einsum("ft,mf->mt", power, mel_basis, optimize=True)


def normalize_max(x: np.ndarray) -> np.ndarray:
    """Each column divided by its largest magnitude; columns of (near) zeros left as they are."""
    peak = np.max(np.abs(x).astype(float), axis=0, keepdims=True)
    peak[peak < np.finfo(x.dtype).tiny] = 1.0
    out = np.empty_like(x)
    out[:] = x / peak
    return out


def rms_from_magnitude(magnitude: np.ndarray, n_fft: int) -> np.ndarray:
    """Per-frame RMS ``[1, frames]`` from an STFT magnitude (Parseval; ``librosa.feature.rms(S=...)``)."""
    power = np.square(magnitude)
    power[0] *= 0.5
    if n_fft % 2 == 0:
        power[-1] *= 0.5
    return np.sqrt(2 * np.sum(power, axis=0, keepdims=True) / n_fft ** 2)


def rms_from_signal(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Per-frame RMS ``[frames]`` of centred, zero-padded frames (``librosa.feature.rms(y=...)``)."""
    padded = np.pad(y, frame_length // 2)
    return np.sqrt(np.mean(np.square(frames(padded, frame_length, hop_length)), axis=-1))


def zero_crossing_rate(y: np.ndarray, frame_length: int, hop_length: int, threshold: float = 1e-10) -> np.ndarray:
    """Fraction of sign changes per centred frame ``[1, frames]``; the signal's edges are
    repeated as padding and samples within ``threshold`` of zero count as positive
    (``librosa.feature.zero_crossing_rate``)."""
    padded = np.pad(y, frame_length // 2, mode="edge")
    negative = np.signbit(np.where(np.abs(padded) <= threshold, 0, padded))
    crossed = np.concatenate([[0], np.cumsum(negative[1:] != negative[:-1])])
    starts = np.arange(0, len(padded) - frame_length + 1, hop_length)
    # A frame counts the crossings between its own samples: frame_length - 1 sample pairs.
    return ((crossed[starts + frame_length - 1] - crossed[starts]) / frame_length)[np.newaxis]


def contrast_bands(sample_rate: int, n_fft: int, n_bands: int = 6, fmin: float = 200.0,
                   quantile: float = 0.02) -> list[tuple[np.ndarray, int]]:
    """Octave sub-bands for spectral contrast: ``(bins, n)`` per band, the STFT rows of the
    band and how many of its lowest and highest values to average (``librosa``'s layout)."""
    freq = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = np.zeros(n_bands + 2)
    edges[1:] = fmin * 2.0 ** np.arange(n_bands + 1)
    if np.any(edges[:-1] >= 0.5 * sample_rate):
        raise ValueError(f"spectral contrast's octave bands from {fmin:g} Hz need a Nyquist frequency above "
                         f"{edges[-2]:g} Hz (where the top band starts); at a sample rate of {sample_rate} Hz it is "
                         f"{sample_rate / 2:g} Hz")
    bands = []
    for k, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        in_band = (freq >= low) & (freq <= high)
        inside = np.flatnonzero(in_band)
        if k > 0:
            in_band[inside[0] - 1] = True
        if k == n_bands:
            in_band[inside[-1] + 1:] = True
        n = max(int(np.rint(quantile * np.sum(in_band))), 1)
        rows = np.flatnonzero(in_band)
        bands.append((rows[:-1] if k < n_bands else rows, n))
    return bands


def spectral_contrast(magnitude: np.ndarray, bands) -> np.ndarray:
    """Peak-to-valley level difference in dB ``[bands, frames]`` per octave sub-band."""
    valley = np.zeros((len(bands), magnitude.shape[1]))
    peak = np.zeros_like(valley)
    for k, (rows, n) in enumerate(bands):
        ordered = np.sort(magnitude[rows], axis=0)
        valley[k] = np.mean(ordered[:n], axis=0)
        peak[k] = np.mean(ordered[-n:], axis=0)
    return power_to_db(peak) - power_to_db(valley)


def non_silent_intervals(y: np.ndarray, top_db: float, frame_length: int = 2048, hop_length: int = 512) -> np.ndarray:
    """``[[start, end], ...]`` sample ranges whose frame RMS is within ``top_db`` of the
    loudest frame: ``librosa.effects.split``, but relative through and through. librosa
    floors frame power at 1e-10 before comparing it with the loudest frame's, so in a quiet
    recording (peak -30 dBFS and below) floored pauses come out "within top_db" and the same
    voice is trimmed differently at another gain; comparing power ratios has no such floor."""
    power = np.square(rms_from_signal(y, frame_length, hop_length).astype(np.float64))
    loud = power > np.max(power) * 10.0 ** (-top_db / 10.0) if power.size else np.zeros(0, bool)
    edges = [np.flatnonzero(np.diff(loud.astype(int))) + 1]
    if loud[0]:
        edges.insert(0, np.array([0]))
    if loud[-1]:
        edges.append(np.array([len(loud)]))
    return np.minimum(np.concatenate(edges) * hop_length, len(y)).reshape(-1, 2)


def resample(y: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """``y`` at ``target_rate`` with soxr's high-quality filter, ``ceil(len * ratio)`` samples
    long: ``librosa.resample(res_type="soxr_hq")`` without importing librosa."""
    import soxr

    n_out = int(np.ceil(len(y) * target_rate / orig_rate))
    out = soxr.resample(y, orig_rate, target_rate, quality="soxr_hq")
    return np.pad(out, (0, max(0, n_out - len(out))))[:n_out].astype(y.dtype)
