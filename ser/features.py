"""Per-clip features, shared by training (featurize stage) and prediction.

``feature_vector`` summarises frame-level librosa features (MFCC, chroma, spectral contrast,
zero-crossing rate, RMS, log-mel) by statistics over time; ``spectrogram_image`` is a
fixed-size log-mel "image" for the 2D CNN. Both take the settings dict stored in
``params.yaml`` under ``featurize`` (and in the model bundle), plus the sample rate.
"""

import librosa
import numpy as np

BLOCK_SIZES = {"chroma": 12, "contrast": 7, "zcr": 1, "rms": 1}
_STATS = {"mean": np.mean, "std": np.std, "min": np.min, "max": np.max}


def block_size(name: str, cfg: dict) -> int:
    """Rows contributed by one feature block before statistics."""
    return {"mfcc": cfg["n_mfcc"], "mel": cfg["n_mels"]}.get(name, BLOCK_SIZES.get(name, 0))


def feature_names(cfg: dict) -> list[str]:
    """Names of the feature vector's entries, e.g. ``mfcc_03_mean``, in vector order."""
    return [f"{block}_{i:02d}_{stat}" for block in cfg["features"] for stat in cfg["stats"]
            for i in range(block_size(block, cfg))]


def _pad_to(y: np.ndarray, length: int) -> np.ndarray:
    return np.pad(y, (0, length - len(y))) if len(y) < length else y


def frame_features(y: np.ndarray, sample_rate: int, cfg: dict) -> dict:
    """Frame-level feature matrices ``(rows, frames)`` for each block in ``cfg['features']``.

    One STFT is shared by all spectral features. Chroma assumes standard tuning: estimating
    a tuning offset from speech is noise, and it would make the vector depend on clip length.
    """
    n_fft, hop = cfg["n_fft"], cfg["hop_length"]
    y = _pad_to(y.astype(np.float32), n_fft)
    magnitude = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop))
    power = magnitude ** 2
    log_mel = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sample_rate, n_mels=cfg["n_mels"]))
    make = {
        "mfcc": lambda: librosa.feature.mfcc(S=log_mel, n_mfcc=cfg["n_mfcc"]),
        "chroma": lambda: librosa.feature.chroma_stft(S=power, sr=sample_rate, tuning=0.0),
        "contrast": lambda: librosa.feature.spectral_contrast(S=magnitude, sr=sample_rate),
        "zcr": lambda: librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop),
        "rms": lambda: librosa.feature.rms(S=magnitude, frame_length=n_fft),
        "mel": lambda: log_mel,
    }
    return {name: make[name]() for name in cfg["features"]}


def feature_vector(y: np.ndarray, sample_rate: int, cfg: dict) -> np.ndarray:
    """Fixed-length float32 vector: each statistic over time of each feature block."""
    blocks = frame_features(y, sample_rate, cfg)
    parts = [_STATS[stat](blocks[name], axis=1) for name in cfg["features"] for stat in cfg["stats"]]
    return np.nan_to_num(np.concatenate(parts).astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def spectrogram_frames(sample_rate: int, cfg: dict) -> int:
    """Width of the spectrogram image for the configured duration and hop."""
    spec = cfg["spectrogram"]
    return 1 + int(round(spec["duration_s"] * sample_rate)) // spec["hop_length"]


def spectrogram_image(y: np.ndarray, sample_rate: int, cfg: dict) -> np.ndarray:
    """Log-mel spectrogram of the central ``duration_s`` seconds (zero-padded if shorter),
    shape ``(n_mels, frames)``, scaled from [-80, 0] dB (relative to the clip peak) to [0, 1]."""
    spec = cfg["spectrogram"]
    length = int(round(spec["duration_s"] * sample_rate))
    if len(y) > length:
        start = (len(y) - length) // 2
        y = y[start:start + length]
    y = _pad_to(y.astype(np.float32), length)
    mel = librosa.feature.melspectrogram(y=y, sr=sample_rate, n_fft=cfg["n_fft"],
                                         hop_length=spec["hop_length"], n_mels=spec["n_mels"])
    db = librosa.power_to_db(mel, ref=np.max, top_db=80.0) if mel.max() > 0 else np.full_like(mel, -80.0)
    return ((db + 80.0) / 80.0).astype(np.float32)


def extract(y: np.ndarray, sample_rate: int, cfg: dict):
    """``(feature_vector, spectrogram_image)`` for one clip: the one entry point for train and predict."""
    return feature_vector(y, sample_rate, cfg), spectrogram_image(y, sample_rate, cfg)
