"""Decode and clean clips, balance emotions, assign cross-validation folds."""

from functools import partial

import numpy as np
import pandas as pd

from ser.audio import cleaning, decode, headers, pack
from ser.core.errors import DataError
from ser.core.parallel import pmap
from ser.data.splits import assign_folds, balance

EXCLUDED_COLUMNS = ["path", "corpus", "stage", "reason"]


def clean_clip(path: str, sample_rate: int, top_db: float, min_duration_s: float, loudness_dbfs: float,
               high_pass_hz: float = cleaning.HIGH_PASS_HZ):
    """Decode ``path`` and clean it; return ``(int16 pcm, None)`` or ``(None, reason)``.

    A file holding less audio than its header declares (``truncated: ...``), or audio past it
    (``extra data: ...``), is excluded: libsndfile would decode the declared part without a
    word, and the label belongs to the whole recording."""
    mismatch = headers.header_mismatch(path)
    if mismatch:
        return None, mismatch
    try:
        y = decode.load(path, sample_rate)
        return pack.to_int16(cleaning.clean(y, sample_rate, top_db, min_duration_s, loudness_dbfs, high_pass_hz)), None
    except DataError as err:
        return None, str(err).split(": ", 1)[-1]


def truncated_count(excluded: pd.DataFrame) -> int:
    """Clips excluded because the file is shorter than its header says (``headers.header_mismatch``)."""
    return int(excluded.reason.str.startswith(headers.TRUNCATED).sum()) if len(excluded) else 0


def missing_classes(frame: pd.DataFrame, classes) -> list[str]:
    """Classes of ``labels.classes`` with no usable clip: a model would get an output it never
    learns, so the prepare stage refuses them."""
    present = set(frame.emotion)
    return [c for c in classes if c not in present]


def prepare_clips(manifest: pd.DataFrame, params: dict):
    """Return ``(clips table with a fold column, list of int16 clips, excluded rows)``."""
    cfg = params["prepare"]
    work = partial(clean_clip, sample_rate=params["audio"]["sample_rate"],
                   top_db=cfg["silence_top_db"], min_duration_s=cfg["min_duration_s"],
                   loudness_dbfs=cfg["loudness_dbfs"], high_pass_hz=cfg["high_pass_hz"])
    results = pmap(work, manifest.path.tolist(), desc="decode+trim")
    ok = np.array([pcm is not None for pcm, _ in results], dtype=bool)
    excluded = pd.DataFrame(
        [{"path": row.path, "corpus": row.corpus, "stage": "prepare", "reason": reason}
         for row, (pcm, reason) in zip(manifest.itertuples(), results) if pcm is None],
        columns=EXCLUDED_COLUMNS)
    frame = manifest[ok].reset_index(drop=True)
    pcm = [p for p, _ in results if p is not None]
    if frame.empty:
        return frame, pcm, excluded
    if cfg["balance"]:
        frame = balance(frame, params["seed"], cfg["max_per_emotion"])
        pcm = [pcm[i] for i in frame.index]
        frame = frame.reset_index(drop=True)
    frame = frame.assign(fold=assign_folds(frame, cfg["folds"], cfg["split"], params["seed"]),
                         augmentation="none", source=np.arange(len(frame)),
                         duration_s=[round(len(p) / params["audio"]["sample_rate"], 4) for p in pcm])
    return frame, pcm, excluded
