"""Stages stream: ``pmap_iter`` draws its items and hands on its results a few chunks at a time,
``Spill`` holds per-clip results on disk, and ``write_npz_chunks`` writes them into the very
bytes ``np.savez`` would write for the whole arrays (issue 24: memory that does not grow with
the dataset, and outputs that keep their hashes)."""

import contextlib
import multiprocessing
import os
import time

import numpy as np
import pytest

from ser.core import parallel
from ser.core.files import Chunked, Spill, read_npz_mapped, write_npz_chunks

SR = 16000


class Counted:
    """An iterable of ``range(n)`` that counts what has been drawn from it."""

    def __init__(self, n):
        self.n, self.drawn = n, 0

    def __iter__(self):
        for x in range(self.n):
            self.drawn += 1
            yield x


def _square(x):
    return x * x


def _slow(x):
    time.sleep(0.05)
    return x


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_pmap_iter_draws_a_few_chunks_ahead_and_keeps_the_order(monkeypatch, jobs):
    monkeypatch.setenv("SER_JOBS", jobs)
    monkeypatch.delenv(parallel.SCHEDULER_ENV, raising=False)
    items = Counted(2000)
    results = parallel.pmap_iter(_square, items, desc="t", chunksize=4, disable=True, total=2000)
    with contextlib.closing(results):
        assert next(results) == 0
        # A list-first map would have drawn all 2000 before the first result.
        ahead = (parallel.WINDOW_PER_WORKER * int(jobs) + 1) * 4
        assert items.drawn <= ahead
        seen = [0]
        for x in results:
            seen.append(x)
            assert items.drawn <= len(seen) + ahead   # never far ahead of what was consumed
    assert seen == [x * x for x in range(2000)]


def test_closing_pmap_iter_early_ends_its_workers(monkeypatch):
    monkeypatch.setenv("SER_JOBS", "2")
    monkeypatch.delenv(parallel.SCHEDULER_ENV, raising=False)
    results = parallel.pmap_iter(_slow, range(10_000), desc="t", chunksize=1, disable=True)
    assert next(results) == 0
    assert multiprocessing.active_children()
    start = time.monotonic()
    results.close()
    assert time.monotonic() - start < parallel.ABANDON_GRACE_S + 2
    deadline = time.monotonic() + 5
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not multiprocessing.active_children()


def _items_then_fail():
    yield from range(5)
    raise ValueError("the 6th item could not be read")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_error_reading_the_items_is_raised_to_the_caller(monkeypatch, jobs):
    monkeypatch.setenv("SER_JOBS", jobs)
    monkeypatch.delenv(parallel.SCHEDULER_ENV, raising=False)
    with pytest.raises(ValueError, match="the 6th item"):
        parallel.pmap(_square, _items_then_fail(), desc="t", chunksize=2, disable=True)


def test_spill_gives_back_each_record_in_any_order_and_leaves_no_file(tmp_path):
    rng = np.random.default_rng(0)
    records = [rng.standard_normal((n, 3, 2)).astype(np.float32) for n in (4, 0, 1, 7)]
    with Spill(tmp_path, np.float32, (3, 2)) as spill:
        for r in records:
            spill.append(r)
        assert list(os.listdir(tmp_path)) == []   # an unnamed file: nothing to leave behind
        assert len(spill) == 4 and list(spill.lengths) == [4, 0, 1, 7]
        assert all(np.array_equal(a, b) for a, b in zip(spill, records))
        view = spill.view([3, 0, 2])
        assert list(view.lengths) == [7, 4, 1] and len(view) == 3
        assert all(np.array_equal(a, records[i]) for a, i in zip(view, [3, 0, 2]))
        assert np.array_equal(view[1], records[0]) and view[1].flags.writeable
        with pytest.raises(ValueError, match="shape"):
            spill.append(np.zeros((2, 2, 2), np.float32))
    assert list(os.listdir(tmp_path)) == []


def test_chunked_npz_is_the_np_savez_file(tmp_path):
    """Members in the caller's order, any number of dimensions, written from chunks: the file is
    byte for byte what ``np.savez`` writes for the joined arrays (outputs keep their hashes)."""
    rng = np.random.default_rng(1)
    images = rng.standard_normal((9, 4, 5)).astype(np.float32)
    vectors, labels = rng.standard_normal((9, 3)).astype(np.float32), np.arange(9, dtype=np.int64)
    write_npz_chunks(tmp_path / "a.npz", {"features": vectors,
                                          "spectrogram": Chunked(np.float32, images.shape, (images[i:i + 2] for i in
                                                                                            range(0, 9, 2))),
                                          "labels": labels})
    np.savez(tmp_path / "b.npz", features=vectors, spectrogram=images, labels=labels)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert np.array_equal(read_npz_mapped(tmp_path / "a.npz", "spectrogram"), images)
    empty = Chunked(np.float32, (0, 4, 5), iter(()))
    write_npz_chunks(tmp_path / "c.npz", {"spectrogram": empty})
    np.savez(tmp_path / "d.npz", spectrogram=np.zeros((0, 4, 5), np.float32))
    assert (tmp_path / "c.npz").read_bytes() == (tmp_path / "d.npz").read_bytes()
    with pytest.raises(ValueError, match="declared"):   # fewer rows than declared: nothing is published
        write_npz_chunks(tmp_path / "e.npz", {"x": Chunked(np.float32, (3, 4, 5), [images[:2]])})
    assert not (tmp_path / "e.npz").exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_streamed_features_are_the_arrays_extract_clips_stacks(tmp_path, params):
    """``save_features`` over ``extract_iter`` (the featurize stage) writes the file that
    ``np.savez`` of ``extract_clips``'s stacked arrays would."""
    import pandas as pd

    from ser.features.handcrafted import extract_clips, extract_iter, save_features

    from .test_parallel import speechlike_clips

    clips, cfg, classes = speechlike_clips(5), params["featurize"], params["labels"]["classes"]
    table = pd.DataFrame({"path": [f"{i}.wav" for i in range(5)], "emotion": classes[:5]})
    with contextlib.closing(extract_iter(iter(clips), SR, cfg, total=5)) as extracted:
        save_features(tmp_path / "out", table, extracted, classes, cfg, SR)
    features, images = extract_clips(clips, SR, cfg)
    np.savez(tmp_path / "reference.npz", features=features.astype(np.float32), spectrogram=images.astype(np.float32),
             labels=np.arange(5, dtype=np.int64))
    assert (tmp_path / "out" / "features.npz").read_bytes() == (tmp_path / "reference.npz").read_bytes()
    assert sorted(os.listdir(tmp_path / "out")) == ["clips.csv", "features.npz"]


def test_prepare_keeps_each_clean_clip_with_its_row_after_balancing(tmp_path, params):
    """The clean clips go to a spill as they come; balancing picks rows of it. Each kept row's
    clip is that file's clean clip, and the durations are those clips'."""
    import pandas as pd

    from ser.data.preparation import clean_clip, prepare_clips

    from .conftest import write_speech

    rows = [{"path": str(write_speech(tmp_path / f"s{i % 4}" / f"{i}.wav", index=i % 5, seconds=0.5 + 0.1 * i)),
             "corpus": "c", "speaker": f"c_s{i % 4}", "gender": "", "emotion": ("angry", "sad")[i % 3 == 0]}
            for i in range(12)]
    params["prepare"].update(folds=2, balance=True)
    table, clips, _ = prepare_clips(pd.DataFrame(rows), params, spill_dir=tmp_path)
    assert len(table) == len(clips) == 8   # 4 "sad" clips, so 4 of the 8 "angry" ones
    cfg = params["prepare"]
    for row, pcm in zip(table.itertuples(), clips):
        expected, _ = clean_clip(row.path, SR, cfg["silence_top_db"], cfg["min_duration_s"], cfg["loudness_dbfs"],
                                 cfg["high_pass_hz"])
        assert np.array_equal(pcm, expected)
        assert float(row.duration_s) == round(len(expected) / SR, 4)


def test_embeddings_are_selected_block_by_block_as_whole(tmp_path, monkeypatch):
    """The training stages read the stored embeddings a block of clips at a time and keep only
    the selected layers: the same values as selecting from the whole array."""
    from ser.features import encoder
    from ser.model import training_data

    stored = np.random.default_rng(2).standard_normal((11, 4, 6)).astype(np.float32)
    np.savez(tmp_path / "e.npz", embeddings=stored, source=np.arange(11))
    monkeypatch.setattr(training_data, "EMBEDDING_BLOCK", 3)
    for layers, pooling in (([1, 3], "mean_std"), ([0], "std"), ([2], "mean")):
        got = training_data.select_embeddings(tmp_path / "e.npz", layers, pooling)
        assert np.array_equal(got, encoder.select(stored, layers, pooling))
    with pytest.raises(Exception, match="encoder.layers has layer 4, but the encoder in .* has layers 0-3"):
        training_data.select_embeddings(tmp_path / "e.npz", [4], "mean")


def test_save_embeddings_writes_what_np_savez_would(tmp_path):
    from ser.features.embedding import save_embeddings

    info = {"n_layers": 2, "d_model": 3}
    rows = np.random.default_rng(3).standard_normal((5, 3, 6)).astype(np.float32)
    assert save_embeddings(tmp_path / "out" / "e.npz", iter(rows), info, np.arange(10, 15)) == 5
    np.savez(tmp_path / "reference.npz", embeddings=rows, source=np.arange(10, 15, dtype=np.int64))
    assert (tmp_path / "out" / "e.npz").read_bytes() == (tmp_path / "reference.npz").read_bytes()
    with pytest.raises(Exception, match="4 clips embedded for 5 clips"):
        save_embeddings(tmp_path / "out" / "f.npz", iter(rows[:4]), info, np.arange(5))
    assert sorted(os.listdir(tmp_path / "out")) == ["e.npz"]   # nothing half-written left


def test_a_missing_or_damaged_encoder_description_is_one_line(tmp_path):
    from ser.core.errors import DataError
    from ser.features.encoder import read_encoder_info

    for content, message in ((None, "not found; run `dvc repro encoder`"), ("{", "not readable JSON"),
                             ("[1]", "not an encoder description"), ('{"n_mels": 80}', "has no 'd_model'")):
        path = tmp_path / "encoder.json"
        path.unlink(missing_ok=True)
        if content is not None:
            path.write_text(content)
        with pytest.raises(DataError, match=message) as err:
            read_encoder_info(path)
        assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_a_pack_cut_inside_its_audio_is_one_line_naming_it(tmp_path):
    """A pack whose zip directory is intact but whose audio ends early (a file truncated and its
    directory rewritten, or a declared length that lies): the clip past the end is refused."""
    import zipfile

    from numpy.lib import format as npy

    from ser.audio.pack import Pack
    from ser.core.errors import DataError

    # Declares 2000 samples in its offsets and header but holds 1000 (the audio member is last:
    # reading on runs into the zip directory, then the end of the file). Written by hand.
    with zipfile.ZipFile(tmp_path / "short.npz", "w", zipfile.ZIP_STORED) as archive:
        with archive.open("offsets.npy", "w") as member:
            npy.write_array(member, np.array([0, 1000, 2000], np.int64))
        with archive.open("audio.npy", "w", force_zip64=True) as member:
            header = npy.header_data_from_array_1_0(np.zeros(0, np.int16))
            header["shape"] = (2000,)
            npy.write_array_header_1_0(member, header)
            member.write(np.zeros(1000, np.int16).tobytes())
    pack = Pack(tmp_path / "short.npz")
    assert len(pack.pcm(0)) == 1000
    with pytest.raises(DataError, match="short.npz: cut short") as err:
        pack.pcm(1)
    assert "\n" not in str(err.value)


def test_augment_writes_only_the_copies_and_featurize_reads_both_packs(project_copy):
    """The augment stage leaves the originals in data/prepared (no second copy of the audio) and
    featurize reads the table's rows from the two packs in order: the originals, then the copies.
    A table that does not match the packs is one line naming it, before any work."""
    import subprocess
    import sys

    import pandas as pd
    import yaml

    from ser.audio.pack import Pack, save_pack
    from ser.features.handcrafted import extract_clips

    from .conftest import TINY_FEATURIZE, checkout_env
    from .test_parallel import speechlike_clips

    params = yaml.safe_load((project_copy / "params.yaml").read_text())
    params["augment"].update(methods=["gain", "noise"], copies=1)
    params["featurize"] = dict(TINY_FEATURIZE)
    (project_copy / "params.yaml").write_text(yaml.safe_dump(params))
    clips = speechlike_clips(3)
    prepared = project_copy / "data" / "prepared"
    prepared.mkdir(parents=True)
    save_pack(prepared / "audio.npz", clips)
    pd.DataFrame({"path": [f"c/{i}.wav" for i in range(3)], "corpus": "c", "speaker": ["a", "a", "b"],
                  "emotion": ["angry", "sad", "angry"], "fold": [0, 0, 1], "augmentation": "none",
                  "source": range(3), "duration_s": [len(c) / SR for c in clips]}).to_csv(prepared / "clips.csv",
                                                                                          index=False)

    def stage(name):
        return subprocess.run([sys.executable, "-m", f"stages.{name}"], cwd=project_copy, capture_output=True,
                              text=True, env=checkout_env(SER_JOBS="2"))

    assert stage("augment").returncode == 0
    copies = Pack(project_copy / "data" / "augmented" / "copies.npz")
    table = pd.read_csv(project_copy / "data" / "augmented" / "clips.csv")
    assert len(copies) == 3 and len(table) == 6 and not (project_copy / "data" / "augmented" / "audio.npz").exists()
    run = stage("featurize")
    assert run.returncode == 0, run.stderr
    with np.load(project_copy / "data" / "features" / "features.npz") as data:
        features = data["features"]
    expected, _ = extract_clips([*clips, *(copies.pcm(i) for i in range(3))], SR, params["featurize"])
    assert np.array_equal(features, expected)   # row i is the table's clip i, from whichever pack holds it

    table.iloc[:5].to_csv(project_copy / "data" / "augmented" / "clips.csv", index=False)
    run = stage("featurize")
    assert run.returncode == 2
    assert run.stderr.strip() == ("error: data/augmented/clips.csv: 5 clips, but data/prepared/audio.npz and "
                                  "data/augmented/copies.npz hold 3 + 3; rerun `dvc repro augment`")


@pytest.mark.parametrize("settings", ["tiny", "default"])
def test_features_do_not_depend_on_the_number_of_workers(params, monkeypatch, settings):
    """One worker (the stage's own process) computes with single-threaded BLAS, as the workers
    do: the same bits whatever SER_JOBS is (a multithreaded sum rounds differently)."""
    from ser.features.handcrafted import extract_clips

    from .conftest import TINY_FEATURIZE
    from .test_parallel import speechlike_clips

    cfg = dict(TINY_FEATURIZE) if settings == "tiny" else params["featurize"]
    clips = speechlike_clips(6)
    monkeypatch.delenv(parallel.SCHEDULER_ENV, raising=False)
    runs = []
    for jobs in ("1", "2"):
        monkeypatch.setenv("SER_JOBS", jobs)
        runs.append(extract_clips(clips, SR, cfg))
    (one_f, one_s), (two_f, two_s) = runs
    assert one_f.tobytes() == two_f.tobytes() and one_s.tobytes() == two_s.tobytes()
