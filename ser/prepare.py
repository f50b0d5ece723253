"""Decode and clean clips, balance emotions, assign splits."""

from functools import partial

import numpy as np
import pandas as pd

from . import audio
from .errors import DataError
from .parallel import pmap
from .splits import assign_splits, balance


def clean_clip(path: str, sample_rate: int, top_db: float, min_duration_s: float):
    """Decode ``path`` and remove silences; return ``(int16 pcm, None)`` or ``(None, reason)``."""
    try:
        y = audio.load(path, sample_rate)
    except DataError as err:
        return None, str(err).split(": ", 1)[-1]
    if audio.is_silent(y):
        return None, "all silence"
    y = audio.remove_silence(y, top_db)
    if len(y) < min_duration_s * sample_rate:
        return None, f"shorter than prepare.min_duration_s={min_duration_s} after silence removal"
    return audio.to_int16(y), None


def prepare(manifest: pd.DataFrame, params: dict):
    """Return ``(clips table with a split column, list of int16 clips, excluded rows)``."""
    cfg = params["prepare"]
    work = partial(clean_clip, sample_rate=params["audio"]["sample_rate"],
                   top_db=cfg["silence_top_db"], min_duration_s=cfg["min_duration_s"])
    results = pmap(work, manifest.path.tolist(), desc="decode+trim")
    ok = np.array([pcm is not None for pcm, _ in results], dtype=bool)
    excluded = pd.DataFrame(
        [{"path": row.path, "corpus": row.corpus, "stage": "prepare", "reason": reason}
         for row, (pcm, reason) in zip(manifest.itertuples(), results) if pcm is None],
        columns=["path", "corpus", "stage", "reason"])
    frame = manifest[ok].reset_index(drop=True)
    pcm = [p for p, _ in results if p is not None]
    if frame.empty:
        raise DataError("prepare: no usable clips left after decoding (see metrics/excluded.csv)")
    if cfg["balance"]:
        frame = balance(frame, params["seed"], cfg["max_per_emotion"])
        pcm = [pcm[i] for i in frame.index]
        frame = frame.reset_index(drop=True)
    frame = frame.assign(split=assign_splits(frame, cfg["fractions"], cfg["split"], params["seed"],
                                                 cfg["test_corpora"]).to_numpy(),
                         augmentation="none",
                         duration_s=[round(len(p) / params["audio"]["sample_rate"], 4) for p in pcm])
    return frame, pcm, excluded
