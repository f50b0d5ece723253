"""``ser.core.parallel.pmap`` on a Dask cluster (``SER_DASK_SCHEDULER``) gives exactly the local results."""

import time

import numpy as np
import pytest

from ser.core import parallel
from ser.core.errors import SerError, one_line_errors
from ser.features.handcrafted import extract_clips

distributed = pytest.importorskip("distributed")

SR = 16000


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes on this machine, as ``dask worker`` would start them."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  worker_dashboard_address=":0", silence_logs=40) as local:
        yield local


@pytest.fixture
def on_cluster(cluster, monkeypatch):
    monkeypatch.setenv(parallel.SCHEDULER_ENV, cluster.scheduler_address)
    return cluster.scheduler_address


def speechlike_clips(n=6):
    """int16 clips of different lengths, as the featurize stage reads them from audio.npz."""
    clips = []
    for i in range(n):
        rng = np.random.default_rng(i)
        t = np.arange(int((0.4 + 0.35 * i) * SR)) / SR
        f0 = 120 + 20 * i + 30 * np.sin(2 * np.pi * 3 * t)
        y = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / SR) / k for k in range(1, 6))
        clips.append(np.round(np.clip(0.2 * y + 0.02 * rng.standard_normal(len(t)), -1, 1) * 32767).astype(np.int16))
    return clips


def _jittered(x):
    time.sleep(0.002 * ((x * 7) % 5))  # chunks finish out of order
    return x * x


def _fails_on_three(x):
    if x == 3:
        raise ValueError("bad clip 3")
    return x


def _blas_threads(_):
    from threadpoolctl import threadpool_info

    return max([pool["num_threads"] for pool in threadpool_info()] or [1])


def test_featurize_on_dask_is_byte_identical_to_local(params, on_cluster, monkeypatch, capsys):
    clips, cfg = speechlike_clips(), params["featurize"]
    with monkeypatch.context() as local:
        local.delenv(parallel.SCHEDULER_ENV)
        local.setenv("SER_JOBS", "2")
        features, spectrograms = extract_clips(clips, SR, cfg)
    remote_features, remote_spectrograms = extract_clips(clips, SR, cfg)   # the featurize stage's per-clip work
    assert f"running on the Dask cluster at {on_cluster} with 2 workers" in capsys.readouterr().err
    assert features.dtype == remote_features.dtype and features.shape == remote_features.shape
    assert features.tobytes() == remote_features.tobytes()
    assert spectrograms.tobytes() == remote_spectrograms.tobytes()


def test_order_is_kept_and_tasks_are_single_threaded(on_cluster):
    items = list(range(57))   # more chunks than are kept in flight
    assert parallel.pmap(_jittered, items, desc="t", chunksize=2, disable=True) == [x * x for x in items]
    assert parallel.pmap(_jittered, iter(items), desc="t", chunksize=2, disable=True) == [x * x for x in items]
    assert set(parallel.pmap(_blas_threads, range(4), desc="t", chunksize=1, disable=True)) == {1}
    assert parallel.pmap(_jittered, [], desc="t") == []


def test_an_error_in_the_work_is_raised_as_locally(on_cluster):
    with pytest.raises(ValueError, match="bad clip 3"):
        parallel.pmap(_fails_on_three, range(8), desc="t", chunksize=2, disable=True)


def test_an_unreachable_scheduler_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT_S", 1)
    for address in ("tcp://127.0.0.1:1", "not-an-address"):
        monkeypatch.setenv(parallel.SCHEDULER_ENV, address)
        with pytest.raises(SerError, match=f"^SER_DASK_SCHEDULER={address}: cannot connect"):
            parallel.pmap(abs, [1, -2], desc="t")

    stage = one_line_errors(lambda: parallel.pmap(abs, [1, -2], desc="t"))
    with pytest.raises(SystemExit) as exit_:
        stage()
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: SER_DASK_SCHEDULER=not-an-address") and "\n" not in err


def test_a_scheduler_without_workers_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT_S", 1)
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=":0", silence_logs=40) as empty:
        monkeypatch.setenv(parallel.SCHEDULER_ENV, empty.scheduler_address)
        with pytest.raises(SerError, match="^SER_DASK_SCHEDULER=.*: the Dask scheduler has no workers"):
            parallel.pmap(abs, [1, -2], desc="t")


@pytest.fixture
def silent_server():
    """A plain TCP server on localhost that accepts connections and never says a word."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:  # closed at teardown
                return

    threading.Thread(target=serve, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in accepted:
        conn.close()


@pytest.fixture
def http_server():
    """An HTTP server on localhost: it answers, but not in Dask's protocol."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# A stage's view: pmap under one_line_errors, with a 2 s connect timeout to keep the test short.
STAGE_SCRIPT = ("from ser.core import parallel; from ser.core.errors import one_line_errors; parallel.CONNECT_TIMEOUT_S = 2; "
                "one_line_errors(lambda: parallel.pmap(abs, [1, -2], desc='t'))()")


@pytest.mark.slow
@pytest.mark.parametrize("server", ["silent_server", "http_server"])
def test_a_server_that_is_not_a_dask_scheduler_fails_in_seconds(server, request):
    import subprocess
    import sys

    from .conftest import ROOT, checkout_env

    address = request.getfixturevalue(server)
    start = time.monotonic()
    # In a subprocess, so a hang fails this test (TimeoutExpired) instead of hanging the suite.
    run = subprocess.run([sys.executable, "-c", STAGE_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=90,
                         env=checkout_env(SER_DASK_SCHEDULER=address))
    seconds = time.monotonic() - start
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == (f"error: SER_DASK_SCHEDULER={address}: cannot connect to a Dask scheduler there "
                                  "(nothing there answered in Dask's protocol within 3 s)")
    assert seconds < 30


def test_a_worker_address_is_not_taken_for_a_scheduler(cluster, monkeypatch):
    worker = next(iter(cluster.scheduler_info["workers"]))
    monkeypatch.setenv(parallel.SCHEDULER_ENV, worker)
    with pytest.raises(SerError, match=f"^SER_DASK_SCHEDULER={worker}: cannot connect to a Dask scheduler there "
                                       r"\(a Dask Worker answered, not a scheduler\)$"):
        parallel.pmap(abs, [1, -2], desc="t")


def _local_and_remote(monkeypatch, work):
    """``work()`` run with local processes, then on the cluster ``SER_DASK_SCHEDULER`` names."""
    with monkeypatch.context() as local:
        local.delenv(parallel.SCHEDULER_ENV)
        local.setenv("SER_JOBS", "2")
        here = work()
    return here, work()


@pytest.mark.slow
def test_prepare_on_dask_is_byte_identical_to_local(params, on_cluster, monkeypatch, tmp_path, capsys):
    """The prepare stage's per-file work (decode, clean) and what follows it (folds)."""
    import pandas as pd

    from ser.data.preparation import prepare_clips

    from .conftest import write_speech

    rows = [{"path": str(write_speech(tmp_path / f"s{i % 3}" / f"{i}.wav", index=i % 5, sample_rate=22050)),
             "corpus": "c", "speaker": f"c_s{i % 3}", "gender": "", "emotion": ("angry", "sad")[i % 2]}
            for i in range(8)]
    params["prepare"].update(folds=2, balance=False)
    (table, clips, excluded), (r_table, r_clips, r_excluded) = _local_and_remote(
        monkeypatch, lambda: prepare_clips(pd.DataFrame(rows), params))
    assert f"running on the Dask cluster at {on_cluster}" in capsys.readouterr().err
    assert table.equals(r_table) and excluded.equals(r_excluded) and len(clips) == 8
    assert all(a.dtype == b.dtype and a.tobytes() == b.tobytes() for a, b in zip(clips, r_clips))


@pytest.mark.slow
def test_augment_and_egemaps_on_dask_are_byte_identical_to_local(params, on_cluster, monkeypatch):
    """The augment stage's copies (every method, pitch shift included) and the egemaps stage's
    functionals (``stages.egemaps``'s per-clip work)."""
    from functools import partial

    import pandas as pd

    from ser.data.augment import augment
    from stages.egemaps import _functionals

    clips = speechlike_clips(4)
    frame = pd.DataFrame({"path": [f"c/{i}.wav" for i in range(4)], "corpus": "c", "speaker": ["a", "a", "b", "b"],
                          "emotion": ["angry", "sad"] * 2, "fold": [0, 0, 1, 1], "augmentation": "none",
                          "source": range(4), "duration_s": [len(c) / SR for c in clips]})
    params["augment"].update(copies=1, methods=["gain", "eq", "pitch", "noise"])
    (table, copies), (r_table, r_copies) = _local_and_remote(monkeypatch, lambda: augment(frame, clips, params))
    assert table.equals(r_table) and len(table) == 8 and len(copies) == 4   # the copies alone
    assert all(a.tobytes() == b.tobytes() for a, b in zip(copies, r_copies))
    work = partial(_functionals, sample_rate=SR, feature_set="eGeMAPSv02")
    here, there = _local_and_remote(monkeypatch, lambda: np.stack(parallel.pmap(work, clips, desc="egemaps")))
    assert here.shape == (4, 88) and here.tobytes() == there.tobytes()
