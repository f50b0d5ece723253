"""Pooled Whisper-encoder states of every clip (the embed stage), computed once per clip."""

import contextlib
from functools import partial
from pathlib import Path

import numpy as np

from ser.audio import pack
from ser.core.errors import DataError
from ser.core.files import Chunked, Spill, write_npz_chunks
from ser.core.parallel import pmap_iter
from ser.features import encoder


def _embed_pcm(pcm, onnx_path, banks, max_frames, fingerprint):
    """``Encoder.pooled`` of one int16 clip: every layer's ``[mean | std]`` over frames. The
    ONNX Runtime session is opened once per worker process, single-threaded."""
    return encoder.runner(onnx_path, banks, max_frames, fingerprint, threads=1).pooled(pack.to_float(pcm))


def embed_iter(clips, info: dict, onnx_path: Path, desc="embed", total: int | None = None):
    """Every encoder layer's mean and std over frames, ``[layers, 2 * dims]``, of each int16
    clip of ``clips`` (any iterable, drawn a few chunks ahead), in order, from the exported
    all-layers encoder at ``onnx_path`` described by ``info`` (``ser.features.encoder.export_info``).
    One single-threaded session per worker, so results do not depend on the number of workers."""
    banks = encoder.whisper_filterbanks(info["n_mels"])
    work = partial(_embed_pcm, onnx_path=onnx_path, banks=banks, max_frames=info["max_frames"],
                   fingerprint=info["fingerprint"])
    return pmap_iter(work, clips, desc=desc, chunksize=8, total=total)


def embed_clips(clips, info: dict, onnx_path: Path, desc="embed") -> np.ndarray:
    """``[clips, layers, 2 * dims]``: ``embed_iter``, stacked."""
    with contextlib.closing(embed_iter(clips, info, onnx_path, desc)) as results:
        results = list(results)
    if not results:
        return np.zeros((0, info["n_layers"] + 1, 2 * info["d_model"]), np.float32)
    return np.stack(results)


def save_embeddings(path, embedded, info: dict, sources) -> int:
    """Write the ``embed_iter`` results ``embedded`` of the clips whose ``source`` ids are
    ``sources`` to the npz at ``path`` (``embeddings``, ``source``); return the clip count.
    Each clip's rows go through a temporary file as they come (28 KB a clip for Whisper base),
    and into the npz chunk by chunk: memory never holds them all."""
    shape = (info["n_layers"] + 1, 2 * info["d_model"])
    with Spill(Path(path).parent, np.float32, shape) as rows:
        for value in embedded:
            rows.append(np.asarray(value, dtype=np.float32)[None])
        if len(rows) != len(sources):
            raise DataError(f"{path}: {len(rows)} clips embedded for {len(sources)} clips")
        write_npz_chunks(path, {"embeddings": Chunked(np.float32, (len(rows),) + shape, rows),
                                "source": np.asarray(sources).astype(np.int64)})
        return len(rows)


EMBEDDINGS = "data/embed/embeddings.npz"
