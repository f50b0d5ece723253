import numpy as np
import pandas as pd
import pytest

from ser.core.errors import DataError
from ser.data.splits import assign_folds, balance, fold_summary

EMOTIONS = ["angry", "happy", "neutral", "sad"]


def make_frame(n_speakers=24, per_speaker=20, seed=0):
    rng = np.random.default_rng(seed)
    rows = [{"path": f"s{s}/{i}.wav", "speaker": f"spk{s:02d}", "corpus": "c" + str(s % 3),
             "emotion": EMOTIONS[rng.integers(len(EMOTIONS))]}
            for s in range(n_speakers) for i in range(per_speaker)]
    return pd.DataFrame(rows)


def test_balance_undersamples_every_emotion_to_the_smallest():
    frame = make_frame()
    balanced = balance(frame, seed=1)
    counts = balanced.emotion.value_counts()
    assert counts.nunique() == 1 and counts.iloc[0] == frame.emotion.value_counts().min()
    assert balanced.index.is_monotonic_increasing
    assert balance(frame, seed=1).equals(balanced)
    assert not balance(frame, seed=2).equals(balanced)
    assert balance(frame, seed=1, max_per_emotion=10).emotion.value_counts().max() == 10


def test_speaker_folds_keep_every_speaker_in_one_fold():
    frame = make_frame()
    folds = assign_folds(frame, 5, "speaker", seed=3)
    assert frame.assign(fold=folds).groupby("speaker").fold.nunique().max() == 1
    sizes = np.bincount(folds) / len(folds)
    assert len(sizes) == 5 and np.all(np.abs(sizes - 0.2) < 0.1)
    for k in range(5):  # every emotion in every test fold
        assert set(frame.emotion[folds == k]) == set(EMOTIONS)


def test_random_folds_are_stratified_and_share_speakers():
    frame = make_frame()
    folds = assign_folds(frame, 5, "random", seed=3)
    assert frame.assign(fold=folds).groupby("speaker").fold.nunique().max() > 1  # the leaky protocol, on purpose
    table = pd.crosstab(frame.emotion, folds, normalize="index")
    assert np.allclose(table, 0.2, atol=0.03)


@pytest.mark.parametrize("mode", ["speaker", "random"])
def test_folds_are_deterministic(mode):
    frame = make_frame()
    first = assign_folds(frame, 5, mode, seed=7)
    assert np.array_equal(first, assign_folds(frame, 5, mode, seed=7))
    assert not np.array_equal(first, assign_folds(frame, 5, mode, seed=8))


def test_too_few_speakers_is_a_clear_error():
    frame = make_frame(n_speakers=3)
    with pytest.raises(DataError, match=r"^prepare.folds=5 needs at least 5 speakers; the data has 3"):
        assign_folds(frame, 5, "speaker", seed=0)


def test_fold_summary_counts_originals():
    frame = make_frame()
    frame["fold"] = assign_folds(frame, 4, "speaker", seed=0)
    frame["augmentation"] = "none"
    copies = frame.assign(augmentation="copy1")
    summary = fold_summary(pd.concat([frame, copies]))
    assert sum(s["clips"] for s in summary.values()) == len(frame)
    assert sum(len(s["speakers"]) for s in summary.values()) == frame.speaker.nunique()
