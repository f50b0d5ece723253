"""Class balancing and cross-validation folds (speaker-grouped, or random as in the seed paper)."""

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from ser.core.errors import DataError


def balance(frame: pd.DataFrame, seed: int, max_per_emotion: int = 0) -> pd.DataFrame:
    """Randomly undersample every emotion to the size of the smallest (or ``max_per_emotion``).

    Returns rows in their original order so downstream outputs do not depend on group order.
    """
    counts = frame.emotion.value_counts()
    target = int(counts.min())
    if max_per_emotion:
        target = min(target, max_per_emotion)
    rng = np.random.default_rng(seed)
    keep = []
    for emotion in sorted(counts.index):
        index = frame.index[frame.emotion == emotion].to_numpy()
        keep.extend(rng.choice(index, target, replace=False))
    return frame.loc[sorted(keep)]


def assign_folds(frame: pd.DataFrame, k: int, mode: str, seed: int) -> np.ndarray:
    """Fold index ``0..k-1`` for every row of ``frame``.

    ``speaker``: whole speakers per fold (``StratifiedGroupKFold``: emotions as stratified as
    whole speakers allow), so no speaker is ever in the training and the test data of one fold.
    ``random``: stratified by emotion over clips, the seed paper's protocol (leaks speakers).
    """
    labels = frame.emotion.to_numpy()
    if mode == "speaker":
        n_speakers = frame.speaker.nunique()
        if n_speakers < k:
            raise DataError(f"prepare.folds={k} needs at least {k} speakers; the data has {n_speakers} "
                            "(lower prepare.folds or add data)")
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(len(frame)), labels, frame.speaker.to_numpy())
    else:
        if pd.Series(labels).value_counts().min() < k:
            raise DataError(f"prepare.folds={k} needs at least {k} clips of every emotion for a random split")
        parts = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(frame)), labels)
    folds = np.full(len(frame), -1, dtype=np.int64)
    for fold, (_, held) in enumerate(parts):
        folds[held] = fold
    return folds


def fold_summary(frame: pd.DataFrame) -> dict:
    """Clips, speakers and per-corpus counts of every fold's originals (for metrics and the README)."""
    originals = frame[frame.augmentation == "none"] if "augmentation" in frame else frame
    out = {}
    for fold, part in originals.groupby(originals.fold.astype(int)):
        out[f"fold{fold}"] = {
            "clips": int(len(part)),
            "speakers": sorted(part.speaker.unique().tolist()),
            "per_corpus": {k: int(v) for k, v in part.corpus.value_counts().sort_index().items()},
        }
    return out
