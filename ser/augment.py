"""Training-set augmentation: additive noise at a given SNR and pitch shifting."""

from functools import partial

import numpy as np
import pandas as pd

from . import audio
from .parallel import pmap
from .splits import assign_splits


def augment_clip(item, method: str, sample_rate: int, snr_db: float, semitones: float, seed: int):
    """One augmented copy of clip ``item = (index, int16 pcm)``.

    The random state depends only on ``(seed, index, method)``, so results do not depend on
    worker count or scheduling.
    """
    index, pcm = item
    rng = np.random.default_rng([seed, index, ("noise", "pitch").index(method)])
    y = audio.to_float(pcm)
    if method == "noise":
        y = audio.add_noise(y, snr_db, rng)
    else:
        y = audio.pitch_shift(y, sample_rate, semitones * rng.choice([-1.0, 1.0]))
    return audio.to_int16(y)


def augment(frame: pd.DataFrame, pcm: list, params: dict):
    """Return ``(table, clips)``: the originals plus one copy per method of each chosen clip.

    Honest default: only training clips are copied, copies inherit the split. With
    ``augment.before_split`` (the seed paper's protocol) every clip is copied and the pooled
    set is split again with ``prepare.split``; with ``random`` that puts copies of one
    recording into different splits, which is the leak this project measures.
    """
    cfg = params["augment"]
    before_split = cfg["before_split"]
    source = np.arange(len(frame)) if before_split else np.flatnonzero(frame.split.to_numpy() == "train")
    tables, clips = [frame], list(pcm)
    for method in cfg["methods"]:
        work = partial(augment_clip, method=method, sample_rate=params["audio"]["sample_rate"],
                       snr_db=cfg["noise_snr_db"], semitones=cfg["pitch_semitones"], seed=params["seed"])
        clips.extend(pmap(work, [(int(i), pcm[i]) for i in source], desc=f"augment:{method}", chunksize=4))
        tables.append(frame.iloc[source].assign(augmentation=method))
    table = pd.concat(tables, ignore_index=True)
    if before_split:
        prep = params["prepare"]
        table["split"] = assign_splits(table, prep["fractions"], prep["split"], params["seed"],
                                       prep["test_corpora"]).to_numpy()
    table["duration_s"] = [round(len(c) / params["audio"]["sample_rate"], 4) for c in clips]
    return table, clips
