"""Feature sets on disk: one .npz (features, spectrograms, labels) and one .csv per split."""

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from . import audio
from .features import extract, feature_names, spectrogram_frames
from .io import read_csv, write_csv, write_npz
from .parallel import pmap

SPLITS = ("train", "val", "test")


def _extract_pcm(pcm, sample_rate, cfg):
    return extract(audio.to_float(pcm), sample_rate, cfg)


def extract_clips(clips, sample_rate: int, cfg: dict, desc="featurize"):
    """Stack ``(features [N, D], spectrograms [N, mels, frames])`` for int16 clips, in parallel."""
    if len(clips) == 0:
        frames = spectrogram_frames(sample_rate, cfg)
        return (np.zeros((0, len(feature_names(cfg))), np.float32),
                np.zeros((0, cfg["spectrogram"]["n_mels"], frames), np.float32))
    results = pmap(partial(_extract_pcm, sample_rate=sample_rate, cfg=cfg), clips, desc=desc, chunksize=8)
    return np.stack([r[0] for r in results]), np.stack([r[1] for r in results])


def save_split(out_dir: Path, split: str, table: pd.DataFrame, features, spectrograms, classes):
    """Write ``<split>.npz`` and ``<split>.csv``; labels are indices into ``classes``."""
    labels = np.array([classes.index(e) for e in table.emotion], dtype=np.int64)
    write_npz(Path(out_dir) / f"{split}.npz", features=features.astype(np.float32),
              spectrogram=spectrograms.astype(np.float32), labels=labels)
    write_csv(Path(out_dir) / f"{split}.csv", table)


def load_split(data_dir: Path, split: str) -> dict:
    """Read one split written by ``save_split``: arrays plus its clip table under ``table``."""
    with np.load(Path(data_dir) / f"{split}.npz") as data:
        out = {key: data[key] for key in data.files}
    out["table"] = read_csv(Path(data_dir) / f"{split}.csv")
    return out
