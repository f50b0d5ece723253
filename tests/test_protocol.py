"""The protocol switch: honest mode never shares a speaker or a recording between train and
test; the paper's mode does (that is what it reproduces); leave-corpus-out holds corpora out."""

import numpy as np
import pandas as pd
import pytest

from ser import audio
from ser.augment import augment
from ser.errors import DataError
from ser.splits import assign_splits

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def clips(n_speakers=21, per_speaker=12):
    rows, pcm = [], []
    rng = np.random.default_rng(0)
    corpora = ["ravdess_speech", "ravdess_song", "tess", "savee"]
    for s in range(n_speakers):
        for i in range(per_speaker):
            corpus = corpora[s % 4] if s >= 2 else ["ravdess_speech", "ravdess_song"][i % 2]
            speaker = f"ravdess_{s:02d}" if corpus.startswith("ravdess") else f"{corpus}_{s}"
            rows.append({"path": f"{corpus}/{s}_{i}.wav", "speaker": speaker, "corpus": corpus,
                         "emotion": ["angry", "sad", "happy"][i % 3], "augmentation": "none"})
            pcm.append(audio.to_int16(0.1 * rng.standard_normal(4000).astype(np.float32)))
    return pd.DataFrame(rows), pcm


def leaks(table):
    train, test = table[table.split == "train"], table[table.split == "test"]
    return (set(train.speaker) & set(test.speaker), set(train.path) & set(test.path))


def test_honest_protocol_does_not_leak(params):
    frame, pcm = clips()
    frame["split"] = assign_splits(frame, FRACTIONS, "speaker", params["seed"]).to_numpy()
    table, _ = augment(frame, pcm, params)
    speakers, recordings = leaks(table)
    assert not speakers and not recordings
    assert (table[table.split == "test"].augmentation == "none").all()


def test_paper_protocol_leaks_speakers_and_augmented_copies(params):
    params["prepare"]["split"] = "random"
    params["augment"]["before_split"] = True
    frame, pcm = clips()
    frame["split"] = assign_splits(frame, FRACTIONS, "random", params["seed"]).to_numpy()
    table, _ = augment(frame, pcm, params)
    speakers, recordings = leaks(table)
    assert speakers and recordings  # the same recording (or its copy) is in train and in test


def test_leave_corpus_out_holds_out_whole_corpora_and_their_speakers():
    frame, _ = clips()
    split = assign_splits(frame, FRACTIONS, "corpus", seed=0, test_corpora=["ravdess_speech"])
    frame["split"] = split.to_numpy()
    assert set(frame[frame.split == "test"].corpus) == {"ravdess_speech"}
    assert "ravdess_speech" not in set(frame[frame.split.isin(["train", "val"])].corpus)
    # RAVDESS song clips by the held-out actors are not trained on: same people
    unused = frame[frame.split == "unused"]
    assert set(unused.corpus) == {"ravdess_song"}
    assert set(unused.speaker) <= set(frame[frame.split == "test"].speaker)
    used = frame[frame.split != "unused"]
    assert used.groupby("speaker").split.nunique().max() == 1
    assert (frame.split == "val").any()


def test_leave_corpus_out_needs_a_present_corpus():
    frame, _ = clips()
    with pytest.raises(DataError, match=r"prepare.test_corpora=\['esd'\] must name some"):
        assign_splits(frame, FRACTIONS, "corpus", seed=0, test_corpora=["esd"])


def test_leave_corpus_out_with_few_remaining_speakers_still_validates_by_speaker():
    frame, _ = clips(n_speakers=6)  # held-out RAVDESS leaves only a handful of other speakers
    split = assign_splits(frame, FRACTIONS, "corpus", seed=0, test_corpora=["ravdess_speech"])
    frame["split"] = split.to_numpy()
    used = frame[frame.split != "unused"]
    assert (used.split == "val").any() and (used.split == "train").any()
    assert used.groupby("speaker").split.nunique().max() == 1
