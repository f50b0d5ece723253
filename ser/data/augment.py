"""Augmented copies of every clip: simulated new recording channels and voices.

Each copy applies every method in ``augment.methods`` with random settings: ``gain`` (level),
``eq`` (band-limiting: microphone, room, telephone), ``noise`` (white noise at an SNR drawn
from a range) and ``pitch`` (a shifted voice). Copies inherit their original's fold and
``source``, so a copy is never on the other side of a split from its original.
"""

import contextlib
from functools import partial

import numpy as np
import pandas as pd

from ser.audio import effects, pack
from ser.core.files import Spill
from ser.core.parallel import pmap_iter
from ser.data.splits import assign_folds

METHODS = ("gain", "eq", "pitch", "noise")  # applied in this order


def augment_clip(item, methods, sample_rate: int, cfg: dict, seed: int):
    """One augmented copy of ``item = (index, copy number, int16 pcm)``.

    The random state depends only on ``(seed, index, copy)``, so results do not depend on
    worker count or scheduling.
    """
    index, copy, pcm = item
    rng = np.random.default_rng([seed, index, copy])
    y = pack.to_float(pcm)
    for method in METHODS:
        if method not in methods:
            continue
        if method == "gain":
            y = effects.apply_gain(y, rng.uniform(-cfg["gain_db"], cfg["gain_db"]))
        elif method == "eq":
            y = effects.band_limit(y, sample_rate, rng.uniform(50.0, 400.0), rng.uniform(3000.0, sample_rate / 2))
        elif method == "pitch":
            y = effects.pitch_shift(y, sample_rate, rng.uniform(-1.0, 1.0) * cfg["pitch_semitones"])
        else:
            y = effects.add_noise(y, rng.uniform(*cfg["noise_snr_db"]), rng)
    return pack.to_int16(y)


def augment(frame: pd.DataFrame, pcm, params: dict, spill_dir=None):
    """Return ``(table, copies)``: the table lists the originals (``frame``), then
    ``augment.copies`` copies of each; ``copies`` are the copies' int16 clips alone, in the
    table's order (the originals' clips are ``pcm``, a sequence of int16 clips in ``frame``'s
    order, not repeated). Each copy goes to a temporary file in ``spill_dir`` (the system's
    temporary folder by default) as its worker finishes it, so memory holds a few clips at a time.

    Honest default: copies keep their original's fold. With ``augment.before_split`` (the
    seed paper's protocol) the pooled originals and copies get new folds, so copies of one
    recording land on both sides of a split: the leak this project measures.
    """
    import tempfile

    cfg, sample_rate = params["augment"], params["audio"]["sample_rate"]
    copies = Spill(spill_dir or tempfile.gettempdir(), np.int16)
    tables = [frame]
    if cfg["methods"]:
        work = partial(augment_clip, methods=cfg["methods"], sample_rate=sample_rate, cfg=cfg, seed=params["seed"])
        for copy in range(1, cfg["copies"] + 1):
            items = ((i, copy, pcm[i]) for i in range(len(frame)))
            with contextlib.closing(pmap_iter(work, items, desc=f"augment:copy{copy}", chunksize=4,
                                              total=len(frame))) as results:
                for clip in results:
                    copies.append(clip)
            tables.append(frame.assign(augmentation=f"copy{copy}"))
    table = pd.concat(tables, ignore_index=True)
    if cfg["before_split"]:
        prep = params["prepare"]
        table["fold"] = assign_folds(table, prep["folds"], prep["split"], params["seed"])
    original_lengths = getattr(pcm, "lengths", None)
    if original_lengths is None:
        original_lengths = [len(pcm[i]) for i in range(len(frame))]
    lengths = np.concatenate([np.asarray(original_lengths, dtype=np.int64)[:len(frame)], copies.lengths])
    table["duration_s"] = [round(int(n) / sample_rate, 4) for n in lengths]
    return table, copies.view(np.arange(len(copies)))
