"""Pooled Whisper-encoder states of every clip (the embed stage), computed once per clip."""

from functools import partial
from pathlib import Path

import numpy as np

from ser.audio import pack
from ser.core.parallel import pmap
from ser.features import encoder


def _embed_pcm(pcm, onnx_path, banks, max_frames, fingerprint):
    """``Encoder.pooled`` of one int16 clip: every layer's ``[mean | std]`` over frames. The
    ONNX Runtime session is opened once per worker process, single-threaded."""
    return encoder.runner(onnx_path, banks, max_frames, fingerprint, threads=1).pooled(pack.to_float(pcm))


def embed_clips(clips, info: dict, onnx_path: Path, desc="embed") -> np.ndarray:
    """``[clips, layers, 2 * dims]``: every encoder layer's mean and std over frames, per clip,
    from the exported all-layers encoder at ``onnx_path`` described by ``info``
    (``ser.features.encoder.export_info``). One single-threaded session per worker, so results do not
    depend on the number of workers."""
    banks = encoder.whisper_filterbanks(info["n_mels"])
    work = partial(_embed_pcm, onnx_path=onnx_path, banks=banks, max_frames=info["max_frames"],
                   fingerprint=info["fingerprint"])
    results = pmap(work, clips, desc=desc, chunksize=8)
    if not results:
        return np.zeros((0, info["n_layers"] + 1, 2 * info["d_model"]), np.float32)
    return np.stack(results)


EMBEDDINGS = "data/embed/embeddings.npz"


ENCODER_EXPORT = "data/embed/encoder.onnx"


ENCODER_INFO = "data/embed/encoder.json"
