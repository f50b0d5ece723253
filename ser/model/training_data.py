"""The training data on disk, computed once per clip (originals and copies), folds as a column.

``data/features/{clips.csv,features.npz}`` holds every clip's feature vector and log-mel
image (``ser.features.handcrafted.extract_clips``); ``data/egemaps/egemaps.npz`` the eGeMAPS functionals of every original and
``data/embed/embeddings.npz`` the pooled Whisper-encoder states of every original (every
layer, mean and std, so that ``encoder.layers`` and ``encoder.pooling`` only select columns).
Training, cross-validation and leave-one-corpus-out select rows; nothing is saved per split.
"""

from pathlib import Path

import numpy as np

from ser.core.errors import DataError
from ser.core.files import npz_member, read_at, read_csv, read_npz_mapped
from ser.features import encoder
from ser.features.embedding import EMBEDDINGS


def _by_source(path, values, sources, table, stage):
    row_of = {int(s): i for i, s in enumerate(sources)}
    missing = sorted(set(table.source) - set(row_of))
    if missing:
        raise DataError(f"{path}: no values for {len(missing)} clips; rerun `dvc repro {stage}`")
    return values[[row_of[s] for s in table.source]]


def load_training_data(params: dict) -> tuple[dict, object]:
    """``load_dataset`` for the cv, loco and train stages: the encoder's embeddings when
    ``train.inputs`` uses them (selected by ``encoder.layers`` and ``encoder.pooling``)."""
    uses_encoder = "encoder" in params["train"]["inputs"]
    return load_dataset(embeddings_path=EMBEDDINGS if uses_encoder else None, encoder_cfg=params["encoder"])


def load_dataset(features_dir="data/features", egemaps_path="data/egemaps/egemaps.npz",
                 embeddings_path=None, encoder_cfg=None) -> tuple[dict, object]:
    """``(arrays, table)`` for every clip: ``features``, ``spectrogram``, ``labels``,
    ``egemaps`` and, with ``embeddings_path``, ``encoder`` (the layers and pooling of
    ``encoder_cfg``) (a copy shares its original's functionals and embedding), and the clip
    table with integer ``fold`` and ``source`` columns."""
    features_dir = Path(features_dir)
    table = read_csv(features_dir / "clips.csv")
    with np.load(features_dir / "features.npz") as data:
        arrays = {key: data[key] for key in data.files if key != "spectrogram"}
        images = "spectrogram" in data.files
    if images:
        # The log-mel images are most of the bytes and only the 2D CNN branch reads them: mapped,
        # they cost no memory unless train.inputs has "spectrogram".
        arrays["spectrogram"] = read_npz_mapped(features_dir / "features.npz", "spectrogram")
    if len(arrays["labels"]) != len(table):
        raise DataError(f"{features_dir}: features.npz and clips.csv disagree ({len(arrays['labels'])} vs "
                        f"{len(table)} clips); rerun `dvc repro featurize`")
    table["fold"] = table.fold.astype(int)
    table["source"] = table.source.astype(int)
    if egemaps_path is not None:
        with np.load(egemaps_path) as data:
            arrays["egemaps"] = _by_source(egemaps_path, data["functionals"], data["source"], table, "egemaps")
    if embeddings_path is not None:
        with np.load(embeddings_path) as data:
            sources = data["source"]
        selected = select_embeddings(embeddings_path, encoder_cfg["layers"], encoder_cfg["pooling"])
        arrays["encoder"] = _by_source(embeddings_path, selected, sources, table, "embed")
    return arrays, table


EMBEDDING_BLOCK = 4096   # clips read at a time: ~115 MB of Whisper-base rows


def select_embeddings(path, layers, pooling: str) -> np.ndarray:
    """``encoder.select`` of every clip's stored embedding (``[clips, layers, 2 * dims]`` in the
    npz at ``path``), read ``EMBEDDING_BLOCK`` clips at a time: memory holds the selected
    columns (2 of 7 layers by default), never every layer of every clip."""
    layout = npz_member(path, "embeddings")
    if layout is None:   # compressed: only np.load can read it
        with np.load(path) as data:
            stored = data["embeddings"]
        layout = (None, stored.dtype, stored.shape)
    offset, dtype, shape = layout
    bad = [k for k in layers if not 0 <= k < shape[1]]
    if bad:
        raise DataError(f"params.yaml: encoder.layers has layer {bad[0]}, but the encoder in {path} "
                        f"has layers 0-{shape[1] - 1}")
    row_bytes = dtype.itemsize * shape[1] * shape[2]
    blocks = []
    with open(path, "rb") as f:
        for start in range(0, shape[0], EMBEDDING_BLOCK):
            rows = min(EMBEDDING_BLOCK, shape[0] - start)
            block = (stored[start:start + rows] if offset is None else
                     read_at(f.fileno(), offset + start * row_bytes, dtype, (rows, *shape[1:])))
            blocks.append(encoder.select(block, layers, pooling))
    if not blocks:
        return encoder.select(np.zeros((0, *shape[1:]), dtype), layers, pooling)
    return np.concatenate(blocks)
