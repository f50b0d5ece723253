"""The training data on disk, computed once per clip (originals and copies), folds as a column.

``data/features/{clips.csv,features.npz}`` holds every clip's feature vector and log-mel
image (``ser.features.extract_clips``); ``data/egemaps/egemaps.npz`` the eGeMAPS functionals of every original and
``data/embed/embeddings.npz`` the pooled Whisper-encoder states of every original (every
layer, mean and std, so that ``encoder.layers`` and ``encoder.pooling`` only select columns).
Training, cross-validation and leave-one-corpus-out select rows; nothing is saved per split.
"""

from functools import partial
from pathlib import Path

import numpy as np

from . import audio, encoder
from .errors import DataError
from .io import read_csv
from .parallel import pmap


def _embed_pcm(pcm, onnx_path, banks, max_frames, fingerprint):
    """``Encoder.pooled`` of one int16 clip: every layer's ``[mean | std]`` over frames. The
    ONNX Runtime session is opened once per worker process, single-threaded."""
    return encoder.runner(onnx_path, banks, max_frames, fingerprint, threads=1).pooled(audio.to_float(pcm))


def embed_clips(clips, info: dict, onnx_path: Path, desc="embed") -> np.ndarray:
    """``[clips, layers, 2 * dims]``: every encoder layer's mean and std over frames, per clip,
    from the exported all-layers encoder at ``onnx_path`` described by ``info``
    (``ser.encoder.describe``). One single-threaded session per worker, so results do not
    depend on the number of workers."""
    banks = encoder.whisper_filterbanks(info["n_mels"])
    work = partial(_embed_pcm, onnx_path=onnx_path, banks=banks, max_frames=info["max_frames"],
                   fingerprint=info["fingerprint"])
    results = pmap(work, clips, desc=desc, chunksize=8)
    if not results:
        return np.zeros((0, info["n_layers"] + 1, 2 * info["d_model"]), np.float32)
    return np.stack(results)


def _by_source(path, values, sources, table, stage):
    row_of = {int(s): i for i, s in enumerate(sources)}
    missing = sorted(set(table.source) - set(row_of))
    if missing:
        raise DataError(f"{path}: no values for {len(missing)} clips; rerun `dvc repro {stage}`")
    return values[[row_of[s] for s in table.source]]


EMBEDDINGS = "data/embed/embeddings.npz"
ENCODER_EXPORT = "data/embed/encoder.onnx"
ENCODER_INFO = "data/embed/encoder.json"


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
        arrays = {key: data[key] for key in data.files}
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
            embeddings = _by_source(embeddings_path, data["embeddings"], data["source"], table, "embed")
        bad = [k for k in encoder_cfg["layers"] if not 0 <= k < embeddings.shape[1]]
        if bad:
            raise DataError(f"params.yaml: encoder.layers has layer {bad[0]}, but the encoder in {embeddings_path} "
                            f"has layers 0-{embeddings.shape[1] - 1}")
        arrays["encoder"] = encoder.select(embeddings, encoder_cfg["layers"], encoder_cfg["pooling"])
    return arrays, table
