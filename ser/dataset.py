"""Features on disk: computed once per clip (originals and copies), folds as a column.

``data/features/{clips.csv,features.npz}`` holds every clip's feature vector and log-mel
image; ``data/egemaps/egemaps.npz`` the eGeMAPS functionals of every original. Training,
cross-validation and leave-one-corpus-out select rows; nothing is saved per split.
"""

from functools import partial
from pathlib import Path

import numpy as np

from . import audio
from .errors import DataError
from .features import extract, feature_names, filterbanks, spectrogram_frames
from .io import read_csv, write_csv, write_npz
from .parallel import pmap


def _extract_pcm(pcm, sample_rate, cfg, banks):
    return extract(audio.to_float(pcm), sample_rate, cfg, banks)


def extract_clips(clips, sample_rate: int, cfg: dict, desc="featurize"):
    """Stack ``(features [N, D], spectrograms [N, mels, frames])`` for int16 clips, in parallel."""
    if len(clips) == 0:
        frames = spectrogram_frames(sample_rate, cfg)
        return (np.zeros((0, len(feature_names(cfg))), np.float32),
                np.zeros((0, cfg["spectrogram"]["n_mels"], frames), np.float32))
    # Filterbanks built once here and handed to the workers: building them imports librosa
    # (~2 s), which every worker process would otherwise pay again.
    banks = filterbanks(sample_rate, cfg)
    results = pmap(partial(_extract_pcm, sample_rate=sample_rate, cfg=cfg, banks=banks), clips, desc=desc, chunksize=8)
    return np.stack([r[0] for r in results]), np.stack([r[1] for r in results])


def save_features(out_dir: Path, table, features, spectrograms, classes):
    """Write ``features.npz`` (labels are indices into ``classes``) and ``clips.csv``."""
    labels = np.array([classes.index(e) for e in table.emotion], dtype=np.int64)
    write_npz(Path(out_dir) / "features.npz", features=features.astype(np.float32),
              spectrogram=spectrograms.astype(np.float32), labels=labels)
    write_csv(Path(out_dir) / "clips.csv", table)


def load_dataset(features_dir="data/features", egemaps_path="data/egemaps/egemaps.npz") -> tuple[dict, object]:
    """``(arrays, table)`` for every clip: ``features``, ``spectrogram``, ``labels`` and
    ``egemaps`` (a copy shares its original's functionals), and the clip table with
    integer ``fold`` and ``source`` columns."""
    features_dir = Path(features_dir)
    table = read_csv(features_dir / "clips.csv")
    with np.load(features_dir / "features.npz") as data:
        arrays = {key: data[key] for key in data.files}
    if len(arrays["labels"]) != len(table):
        raise DataError(f"{features_dir}: features.npz and clips.csv disagree ({len(arrays['labels'])} vs "
                        f"{len(table)} clips); rerun `dvc repro featurize`")
    table["fold"] = table.fold.astype(int)
    table["source"] = table.source.astype(int)
    if egemaps_path is not None:
        with np.load(egemaps_path) as data:
            functionals, sources = data["functionals"], data["source"]
        row_of = {int(s): i for i, s in enumerate(sources)}
        missing = sorted(set(table.source) - set(row_of))
        if missing:
            raise DataError(f"{egemaps_path}: no functionals for {len(missing)} clips; rerun `dvc repro egemaps`")
        arrays["egemaps"] = functionals[[row_of[s] for s in table.source]]
    return arrays, table
