"""Per-clip features, shared by training (featurize stage) and prediction.

``feature_vector`` summarises frame-level features (MFCC, chroma, spectral contrast,
zero-crossing rate, RMS, log-mel) by statistics over time; ``spectrogram_image`` is a
fixed-size log-mel "image" for the 2D CNN. Both take the settings dict stored in
``params.yaml`` under ``featurize`` (and in the model bundle), the sample rate, and the
``filterbanks`` those settings imply: built with librosa in training, read from the bundle in
prediction. The arithmetic is ``ser.audio.dsp`` (NumPy) plus scipy's DCT for MFCC, so prediction
never imports librosa and still computes the very features training did.
"""

import contextlib
import json
from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from ser.audio import dsp, pack
from ser.core.errors import DataError
from ser.core.files import Chunked, Spill, write_csv, write_npz_chunks
from ser.core.parallel import pmap_iter

BLOCK_SIZES = {"chroma": 12, "contrast": 7, "zcr": 1, "rms": 1}
_STATS = {"mean": np.mean, "std": np.std, "min": np.min, "max": np.max}


def block_size(name: str, cfg: dict) -> int:
    """Rows contributed by one feature block before statistics."""
    return {"mfcc": cfg["n_mfcc"], "mel": cfg["n_mels"]}.get(name, BLOCK_SIZES.get(name, 0))


def feature_names(cfg: dict) -> list[str]:
    """Names of the feature vector's entries, e.g. ``mfcc_03_mean``, in vector order."""
    return [f"{block}_{i:02d}_{stat}" for block in cfg["features"] for stat in cfg["stats"]
            for i in range(block_size(block, cfg))]


def filterbanks(sample_rate: int, cfg: dict) -> dict:
    """The fixed matrices the features apply, from librosa (imported only here): the Hann
    window, the mel and chroma filterbanks and the spectrogram image's mel filterbank.
    Cached per settings."""
    return _filterbanks(sample_rate, json.dumps(cfg, sort_keys=True))


@lru_cache(maxsize=4)
def _filterbanks(sample_rate: int, cfg_json: str) -> dict:
    import librosa

    cfg = json.loads(cfg_json)
    n_fft = cfg["n_fft"]
    banks = {
        "window": librosa.filters.get_window("hann", n_fft, fftbins=True),
        "mel": librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=cfg["n_mels"]),
        "chroma": librosa.filters.chroma(sr=sample_rate, n_fft=n_fft, tuning=0.0, n_chroma=12),
        "spectrogram_mel": librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=cfg["spectrogram"]["n_mels"]),
    }
    for bank in banks.values():
        bank.setflags(write=False)  # shared by every call: nobody may change them
    return banks


def _mfcc(log_mel: np.ndarray, n_mfcc: int) -> np.ndarray:
    """The first ``n_mfcc`` orthonormal DCT-II coefficients of each log-mel frame
    (``librosa.feature.mfcc(S=log_mel)``). scipy.fft, not the rest of scipy: 0.16 s to import."""
    import scipy.fft

    return scipy.fft.dct(log_mel, axis=0, type=2, norm="ortho")[:n_mfcc]


def _pad_to(y: np.ndarray, length: int) -> np.ndarray:
    return np.pad(y, (0, length - len(y))) if len(y) < length else y


def frame_features(y: np.ndarray, sample_rate: int, cfg: dict, banks: dict | None = None) -> dict:
    """Frame-level feature matrices ``(rows, frames)`` for each block in ``cfg['features']``.

    One STFT is shared by all spectral features. Chroma assumes standard tuning: estimating
    a tuning offset from speech is noise, and it would make the vector depend on clip length.
    """
    banks = banks or filterbanks(sample_rate, cfg)
    n_fft, hop = cfg["n_fft"], cfg["hop_length"]
    y = _pad_to(y.astype(np.float32), n_fft)
    magnitude = dsp.stft_magnitude(y, banks["window"], hop)
    power = magnitude ** 2
    log_mel = dsp.power_to_db(dsp.melspectrogram(power, banks["mel"]))
    make = {
        "mfcc": lambda: _mfcc(log_mel, cfg["n_mfcc"]),
        "chroma": lambda: dsp.normalize_max(dsp.project(banks["chroma"], power)),
        "contrast": lambda: dsp.spectral_contrast(magnitude, dsp.contrast_bands(sample_rate, n_fft)),
        "zcr": lambda: dsp.zero_crossing_rate(y, n_fft, hop),
        "rms": lambda: dsp.rms_from_magnitude(magnitude, n_fft),
        "mel": lambda: log_mel,
    }
    return {name: make[name]() for name in cfg["features"]}


def feature_vector(y: np.ndarray, sample_rate: int, cfg: dict, banks: dict | None = None) -> np.ndarray:
    """Fixed-length float32 vector: each statistic over time of each feature block."""
    blocks = frame_features(y, sample_rate, cfg, banks)
    parts = [_STATS[stat](blocks[name], axis=1) for name in cfg["features"] for stat in cfg["stats"]]
    return np.nan_to_num(np.concatenate(parts).astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def spectrogram_frames(sample_rate: int, cfg: dict) -> int:
    """Width of the spectrogram image for the configured duration and hop."""
    spec = cfg["spectrogram"]
    return 1 + int(round(spec["duration_s"] * sample_rate)) // spec["hop_length"]


def spectrogram_image(y: np.ndarray, sample_rate: int, cfg: dict, banks: dict | None = None) -> np.ndarray:
    """Log-mel spectrogram of the central ``duration_s`` seconds (zero-padded if shorter),
    shape ``(n_mels, frames)``, scaled from [-80, 0] dB (relative to the clip peak) to [0, 1]."""
    banks = banks or filterbanks(sample_rate, cfg)
    spec = cfg["spectrogram"]
    length = int(round(spec["duration_s"] * sample_rate))
    if len(y) > length:
        start = (len(y) - length) // 2
        y = y[start:start + length]
    y = _pad_to(y.astype(np.float32), length)
    mel = dsp.melspectrogram(dsp.stft_magnitude(y, banks["window"], spec["hop_length"]) ** 2.0, banks["spectrogram_mel"])
    db = dsp.power_to_db(mel, ref=mel.max(), top_db=80.0) if mel.max() > 0 else np.full_like(mel, -80.0)
    return ((db + 80.0) / 80.0).astype(np.float32)


def extract(y: np.ndarray, sample_rate: int, cfg: dict, banks: dict | None = None):
    """``(feature_vector, spectrogram_image)`` for one clip: the one entry point for train and
    predict. ``banks`` are the settings' ``filterbanks`` (the bundle's, in prediction)."""
    banks = banks or filterbanks(sample_rate, cfg)
    return feature_vector(y, sample_rate, cfg, banks), spectrogram_image(y, sample_rate, cfg, banks)


def _extract_pcm(pcm, sample_rate, cfg, banks):
    return extract(pack.to_float(pcm), sample_rate, cfg, banks)


def extract_iter(clips, sample_rate: int, cfg: dict, desc="featurize", total: int | None = None):
    """``(feature_vector, spectrogram_image)`` of each int16 clip of ``clips`` (any iterable,
    drawn a few chunks ahead), in order, computed in parallel (``core.parallel.pmap_iter``)."""
    # Filterbanks built once here and handed to the workers: building them imports librosa
    # (~2 s), which every worker process would otherwise pay again.
    banks = filterbanks(sample_rate, cfg)
    return pmap_iter(partial(_extract_pcm, sample_rate=sample_rate, cfg=cfg, banks=banks), clips, desc=desc,
                     chunksize=8, total=total)


def extract_clips(clips, sample_rate: int, cfg: dict, desc="featurize"):
    """Stack ``(features [N, D], spectrograms [N, mels, frames])`` for int16 clips, in parallel."""
    if len(clips) == 0:
        frames = spectrogram_frames(sample_rate, cfg)
        return (np.zeros((0, len(feature_names(cfg))), np.float32),
                np.zeros((0, cfg["spectrogram"]["n_mels"], frames), np.float32))
    with contextlib.closing(extract_iter(clips, sample_rate, cfg, desc)) as results:
        results = list(results)
    return np.stack([r[0] for r in results]), np.stack([r[1] for r in results])


def save_features(out_dir: Path, table, extracted, classes, cfg: dict, sample_rate: int):
    """Write ``features.npz`` (``features``, ``spectrogram``, and ``labels``: indices into
    ``classes``) and ``clips.csv`` from ``extracted``, the ``extract_iter`` results of the
    table's clips in order. Both arrays go through temporary files as the results come, and
    into the npz chunk by chunk: memory holds neither."""
    out_dir = Path(out_dir)
    labels = np.array([classes.index(e) for e in table.emotion], dtype=np.int64)
    image_shape = (cfg["spectrogram"]["n_mels"], spectrogram_frames(sample_rate, cfg))
    vector_shape = (len(feature_names(cfg)),)
    with Spill(out_dir, np.float32, vector_shape) as vectors, Spill(out_dir, np.float32, image_shape) as images:
        for vector, image in extracted:
            vectors.append(np.asarray(vector, dtype=np.float32)[None])
            images.append(np.asarray(image, dtype=np.float32)[None])
        if len(vectors) != len(table):
            raise DataError(f"{out_dir}: {len(vectors)} clips featurized for a table of {len(table)}")
        write_npz_chunks(out_dir / "features.npz", {
            "features": Chunked(np.float32, (len(vectors),) + vector_shape, vectors),
            "spectrogram": Chunked(np.float32, (len(images),) + image_shape, images),
            "labels": labels})
    write_csv(out_dir / "clips.csv", table)
