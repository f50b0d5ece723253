"""Class balancing and train/val/test assignment (speaker-independent or random)."""

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from .errors import DataError


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


def _pick_group_fold(labels, groups, fraction: float, seed: int, allow_fewer: bool = False) -> np.ndarray:
    """Boolean mask of a fold of whole groups, as stratified by label as the groups allow,
    whose size is closest to ``fraction`` of the rows. ``allow_fewer`` accepts fewer groups
    than folds (then one fold per group) instead of failing."""
    n_groups = len(np.unique(groups))
    n_splits = max(2, int(round(1.0 / fraction)))
    if allow_fewer and 2 <= n_groups < n_splits:
        n_splits = n_groups
    if n_groups < n_splits:
        raise DataError(f"prepare.split=speaker needs at least {n_splits} speakers to hold out "
                        f"{fraction:.0%}; only {n_groups} remain (add data or use prepare.split=random)")
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    target = fraction * len(labels)
    best = None
    for _, held in folds.split(np.zeros(len(labels)), labels, groups):
        if best is None or abs(len(held) - target) < abs(len(best) - target):
            best = held
    mask = np.zeros(len(labels), dtype=bool)
    mask[best] = True
    return mask


def assign_splits(frame: pd.DataFrame, fractions: dict, mode: str, seed: int, test_corpora=()) -> pd.Series:
    """Return a Series of 'train'/'val'/'test' (or 'unused') aligned with ``frame``.

    ``speaker``: every speaker's clips land in one split (held-out folds chosen by
    ``StratifiedGroupKFold``, so emotions stay as stratified as whole speakers allow).
    ``random``: a stratified random split by emotion, the seed paper's protocol (leaks speakers).
    ``corpus``: leave-corpus-out: ``test_corpora`` form the test split; validation is a speaker
    fold of the rest, sized ``val / (train + val)``. Clips of other corpora by a test speaker
    (RAVDESS speech and song share actors) are marked 'unused' so no speaker crosses splits.
    """
    labels = frame.emotion.to_numpy()
    split = np.full(len(frame), "train", dtype=object)
    remaining = np.arange(len(frame))
    left = 1.0
    steps = (("test", 0), ("val", 1))
    if mode == "corpus":
        held = frame.corpus.isin(test_corpora).to_numpy()
        if not held.any() or held.all():
            raise DataError(f"prepare.test_corpora={list(test_corpora)} must name some, not all, of the corpora "
                            f"in the data ({', '.join(sorted(frame.corpus.unique()))})")
        split[held] = "test"
        overlap = frame.speaker.isin(set(frame.speaker[held])).to_numpy() & ~held
        split[overlap] = "unused"
        remaining = np.flatnonzero(~held & ~overlap)
        left = fractions["train"] + fractions["val"]
        steps = (("val", 1),)
        mode = "corpus-val"
    for name, step in steps:
        fraction = fractions[name]
        if fraction <= 0:
            continue
        relative = fraction / left
        sub_labels = labels[remaining]
        if mode in ("speaker", "corpus-val"):
            # Validation in leave-corpus-out may have few speakers left (holding out RAVDESS
            # speech also drops its actors' songs): take one speaker fold rather than fail.
            held = _pick_group_fold(sub_labels, frame.speaker.to_numpy()[remaining], relative, seed + step,
                                    allow_fewer=mode == "corpus-val")
        else:
            stratify = sub_labels if pd.Series(sub_labels).value_counts().min() >= 2 else None
            _, held_idx = train_test_split(np.arange(len(remaining)), test_size=relative,
                                           random_state=seed + step, stratify=stratify)
            held = np.zeros(len(remaining), dtype=bool)
            held[held_idx] = True
        split[remaining[held]] = name
        remaining = remaining[~held]
        left -= fraction
    return pd.Series(split, index=frame.index, name="split")


def split_summary(frame: pd.DataFrame) -> dict:
    """Clips, speakers and per-emotion counts for every split (for metrics and the README)."""
    out = {"unused": int((frame.split == "unused").sum())}
    for name in ("train", "val", "test"):
        part = frame[frame.split == name]
        out[name] = {
            "clips": int(len(part)),
            "speakers": int(part.speaker.nunique()),
            "per_emotion": {k: int(v) for k, v in part.emotion.value_counts().sort_index().items()},
            "per_corpus": {k: int(v) for k, v in part.corpus.value_counts().sort_index().items()},
        }
    return out
