"""The protocol switch: honest folds never share a speaker or a recording (or an augmented copy
of it) between a fold's training data and its test data; leave-one-corpus-out holds out whole
corpora and their speakers; the paper's protocol leaks (that is what it reproduces)."""

import numpy as np
import pandas as pd
import pytest

from ser.audio import pack
from ser.core.errors import DataError
from ser.data.augment import augment
from ser.data.splits import assign_folds
from ser.model.training import corpus_splits, fold_splits


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
            pcm.append(pack.to_int16(0.1 * rng.standard_normal(4000).astype(np.float32)))
    frame = pd.DataFrame(rows)
    return frame.assign(source=np.arange(len(frame))), pcm


def augmented(params, mode="speaker"):
    params["augment"]["methods"] = ["gain", "noise"]  # fast methods; folds are what is tested
    frame, pcm = clips()
    frame["fold"] = assign_folds(frame, params["prepare"]["folds"], mode, params["seed"])
    table, copies = augment(frame, pcm, params)
    return table, copies


def leaks(table, train_rows, test_rows):
    train, test = table.iloc[train_rows], table.iloc[test_rows]
    return set(train.speaker) & set(test.speaker), set(train.path) & set(test.path)


def test_every_fold_is_speaker_and_recording_independent(params):
    table, copies = augmented(params)
    assert len(table) == 3 * 21 * 12 and len(copies) == 2 * 21 * 12
    assert (table.groupby("source").fold.nunique() == 1).all()   # copies follow their original
    splits = fold_splits(table)
    assert len(splits) == params["prepare"]["folds"]
    tested = np.concatenate([test for _, _, test in splits])
    assert sorted(tested) == sorted(np.flatnonzero(table.augmentation == "none"))  # every original once
    for name, train_rows, test_rows in splits:
        speakers, recordings = leaks(table, train_rows, test_rows)
        assert not speakers and not recordings, name
        assert (table.augmentation.iloc[test_rows] == "none").all()
        assert not set(table.source.iloc[train_rows]) & set(table.source.iloc[test_rows])


def test_leave_one_corpus_out_holds_out_whole_corpora_and_their_speakers(params):
    table, _ = augmented(params)
    splits = corpus_splits(table)
    assert [name for name, _, _ in splits] == sorted(table.corpus.unique())
    for corpus, train_rows, test_rows in splits:
        assert set(table.corpus.iloc[test_rows]) == {corpus}
        assert corpus not in set(table.corpus.iloc[train_rows])
        speakers, recordings = leaks(table, train_rows, test_rows)
        assert not speakers and not recordings, corpus
    # RAVDESS song clips by the held-out speech actors are not trained on: same people
    _, train_rows, _ = next(s for s in splits if s[0] == "ravdess_speech")
    shared = set(table[table.corpus == "ravdess_speech"].speaker) & set(table[table.corpus == "ravdess_song"].speaker)
    assert shared and not shared & set(table.speaker.iloc[train_rows])


def test_paper_protocol_leaks_speakers_and_augmented_copies(params):
    params["prepare"]["split"] = "random"
    params["augment"]["before_split"] = True
    table, _ = augmented(params, mode="random")
    leaked = [leaks(table, train, test) for _, train, test in fold_splits(table)]
    assert all(speakers and recordings for speakers, recordings in leaked)


def test_folds_stratify_whole_speakers_and_need_enough_of_them():
    frame, _ = clips()
    folds = assign_folds(frame, 5, "speaker", seed=0)
    assert set(folds) == set(range(5))
    assert frame.assign(fold=folds).groupby("speaker").fold.nunique().max() == 1
    assert np.array_equal(folds, assign_folds(frame, 5, "speaker", seed=0))
    with pytest.raises(DataError, match=r"prepare.folds=30 needs at least 30 speakers; the data has 21"):
        assign_folds(frame, 30, "speaker", seed=0)
