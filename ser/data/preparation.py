"""Decode and clean clips, balance emotions, assign cross-validation folds."""

import contextlib
from functools import partial

import numpy as np
import pandas as pd

from ser.audio import cleaning, decode, headers, pack
from ser.core.errors import DataError
from ser.core.files import Spill
from ser.core.parallel import pmap_iter
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


def prepare_clips(manifest: pd.DataFrame, params: dict, spill_dir=None):
    """Return ``(clips table with a fold column, its int16 clips, excluded rows)``.

    The clips are a ``core.files.SpillView``: each clean clip goes to a temporary file in
    ``spill_dir`` (the system's temporary folder by default) as its worker finishes it, so
    memory holds a few clips at a time, never the corpus; balancing then picks rows of it."""
    import tempfile

    cfg = params["prepare"]
    work = partial(clean_clip, sample_rate=params["audio"]["sample_rate"],
                   top_db=cfg["silence_top_db"], min_duration_s=cfg["min_duration_s"],
                   loudness_dbfs=cfg["loudness_dbfs"], high_pass_hz=cfg["high_pass_hz"])
    spill = Spill(spill_dir or tempfile.gettempdir(), np.int16)
    ok, excluded = np.zeros(len(manifest), dtype=bool), []
    with contextlib.closing(pmap_iter(work, manifest.path.tolist(), desc="decode+trim")) as results:
        for i, (row, (pcm, reason)) in enumerate(zip(manifest.itertuples(), results)):
            if pcm is None:
                excluded.append({"path": row.path, "corpus": row.corpus, "stage": "prepare", "reason": reason})
            else:
                ok[i] = True
                spill.append(pcm)
    excluded = pd.DataFrame(excluded, columns=EXCLUDED_COLUMNS)
    frame = manifest[ok].reset_index(drop=True)
    if frame.empty:
        return frame, spill.view([]), excluded
    if cfg["balance"]:
        frame = balance(frame, params["seed"], cfg["max_per_emotion"])
    clips = spill.view(frame.index)   # after balancing, the row numbers are the clean clips' order in the spill
    frame = frame.reset_index(drop=True)
    frame = frame.assign(fold=assign_folds(frame, cfg["folds"], cfg["split"], params["seed"]),
                         augmentation="none", source=np.arange(len(frame)),
                         duration_s=[round(int(n) / params["audio"]["sample_rate"], 4) for n in clips.lengths])
    return frame, clips, excluded
