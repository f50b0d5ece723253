import numpy as np
import pandas as pd
import pytest

from ser.errors import DataError
from ser.splits import assign_splits, balance, split_summary

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}
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


def test_speaker_split_keeps_every_speaker_in_one_split():
    frame = make_frame()
    frame["split"] = assign_splits(frame, FRACTIONS, "speaker", seed=3)
    assert frame.groupby("speaker").split.nunique().max() == 1
    sizes = frame.split.value_counts(normalize=True)
    assert set(sizes.index) == {"train", "val", "test"}
    assert abs(sizes["test"] - 0.15) < 0.07 and abs(sizes["val"] - 0.15) < 0.07
    for name in ("val", "test"):  # every emotion present in held-out splits
        assert set(frame[frame.split == name].emotion) == set(EMOTIONS)


def test_random_split_is_stratified_and_shares_speakers():
    frame = make_frame()
    frame["split"] = assign_splits(frame, FRACTIONS, "random", seed=3)
    assert frame.groupby("speaker").split.nunique().max() > 1  # the leaky protocol, on purpose
    table = pd.crosstab(frame.emotion, frame.split, normalize="index")
    assert np.allclose(table["test"], 0.15, atol=0.03)


@pytest.mark.parametrize("mode", ["speaker", "random"])
def test_splits_are_deterministic(mode):
    frame = make_frame()
    first = assign_splits(frame, FRACTIONS, mode, seed=7)
    assert first.equals(assign_splits(frame, FRACTIONS, mode, seed=7))
    assert not first.equals(assign_splits(frame, FRACTIONS, mode, seed=8))


def test_zero_validation_fraction():
    frame = make_frame()
    split = assign_splits(frame, {"train": 0.8, "val": 0.0, "test": 0.2}, "speaker", seed=0)
    assert set(split) == {"train", "test"}


def test_too_few_speakers_is_a_clear_error():
    frame = make_frame(n_speakers=3)
    with pytest.raises(DataError, match="prepare.split=speaker needs at least 7 speakers"):
        assign_splits(frame, FRACTIONS, "speaker", seed=0)


def test_split_summary_counts():
    frame = make_frame()
    frame["split"] = assign_splits(frame, FRACTIONS, "speaker", seed=0)
    summary = split_summary(frame)
    assert summary.pop("unused") == 0
    assert sum(s["clips"] for s in summary.values()) == len(frame)
    assert sum(s["speakers"] for s in summary.values()) == frame.speaker.nunique()
