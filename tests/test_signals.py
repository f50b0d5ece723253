"""Ctrl-C, SIGTERM and SIGHUP end a stage promptly and in order: exit status 128 + signal, one line on
stderr, no worker process left behind, no hidden temporary file left beside an output.

Real processes and real signals: each case runs a small stage-like script of this checkout in a
process group of its own (as ``dvc repro`` runs a stage in the terminal's group), waits for the
line it prints when it is where the signal must land, and signals it."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ser.core import parallel
from ser.core.errors import one_line_errors

from .conftest import checkout_env

EXIT_S = 5   # an interrupted stage must be gone well within this (the old pmap waited forever)

# A stage whose per-clip work runs on SER_JOBS=2 local workers; each worker says once that it is
# busy, and the test signals once both have. "sleep": slow clips (the old pmap waited for the
# running ones). "big": fast clips with 4 MB results, so a signal very likely lands while a worker
# sends one back: the case that hung for good (a worker interrupted half-way through a result left
# the pool's result pipe mid-message; the old code hung in 5 of 6 runs of this test, 7 of 8 trials).
PMAP_STAGE = """
    import os, sys, time
    import numpy as np
    from ser.core.errors import one_line_errors
    from ser.core.parallel import pmap

    KIND = sys.argv[1]
    announced = []

    def work(x):
        if not announced:
            announced.append(1)
            os.write(1, f"worker {os.getpid()}\\n".encode())   # one write: lines of two workers never mix
        if KIND == "sleep":
            time.sleep(60)
            return x
        return np.full(2_000_000, x, dtype=np.int16)

    @one_line_errors
    def main():
        pmap(work, range(100_000), desc="t", chunksize=1, disable=True)

    main()
"""

# A stage writing an output with ser.core.files while a signal arrives: the last array is pickled, and
# pickling it says `ready` and waits, so the signal lands with the hidden temporary file half-written.
WRITE_STAGE = """
    import sys, time
    import numpy as np
    import pandas as pd
    from ser.core.errors import one_line_errors
    from ser.core.files import write_csv, write_npz

    class Slow:
        def _wait(self):
            print("ready", flush=True)
            time.sleep(60)
            return "never"

        def __reduce__(self):   # np.savez pickles object arrays
            return (str, (self._wait(),))

        def __str__(self):      # to_csv formats object cells
            return self._wait()

    @one_line_errors
    def main():
        if sys.argv[1] == "npz":
            write_npz("out/audio.npz", audio=np.zeros(20_000_000, dtype=np.int16), slow=np.array([Slow()], dtype=object))
        else:
            write_csv("out/excluded.csv", pd.DataFrame({"path": [f"clip{i}.wav" for i in range(200_000)] + [Slow()]}))

    main()
"""

# A stage whose cleanup is slow: a second signal must not wait for it.
SLOW_CLEANUP_STAGE = """
    import time
    from ser.core.errors import one_line_errors

    @one_line_errors
    def main():
        try:
            print("ready", flush=True)
            time.sleep(60)
        finally:
            print("cleaning up", flush=True)
            time.sleep(60)

    main()
"""

STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


def as_terminal_job():
    """``preexec_fn``: the signal dispositions of a job started at a terminal (all default). The
    suite itself may run under ``nohup`` or as a background job, whose ignored SIGHUP and SIGINT
    a child inherits and a stage then keeps ignoring, by design."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


@pytest.fixture
def start(tmp_path):
    """Start a stage script in a process group of its own (as a terminal's job is: a group signal
    then reaches the stage and its workers, and nothing else); whatever is left of each group is
    killed at teardown."""
    groups = []

    def start_(script: str, *args) -> subprocess.Popen:
        path = tmp_path / "stage.py"
        path.write_text(textwrap.dedent(script))
        proc = subprocess.Popen([sys.executable, str(path), *args], cwd=tmp_path, env=checkout_env(SER_JOBS="2"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=as_terminal_job)
        groups.append(proc)
        return proc

    yield start_
    for proc in groups:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.communicate()


def read_line(proc: subprocess.Popen, timeout: float = 60) -> str:
    """The child's next stdout line; the test fails (not hangs) if none comes. Read from the pipe
    itself, a line at a time: a buffered reader could take two lines in one read and leave the
    second where select() does not see it."""
    import selectors

    pending = _unread.setdefault(proc.pid, bytearray())
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout.fileno(), selectors.EVENT_READ)
        while b"\n" not in pending:
            if not sel.select(max(0.0, deadline - time.monotonic())):
                pytest.fail(f"no line from the child within {timeout} s")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                return pending.decode()   # the child is gone: what it left
            pending += chunk
    line, _, rest = bytes(pending).partition(b"\n")
    pending[:] = rest
    return line.decode() + "\n"


_unread = {}   # per child: what read_line has read past the line it returned


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie is dead: only its exit status is left)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def finish(proc: subprocess.Popen, timeout: float = EXIT_S):
    """``(exit status, stderr)``, or a failure naming the hang."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the stage was still running {timeout} s after the signal")
    return proc.returncode, err


def assert_one_line(err: str, signum):
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: interrupted"), err
    if signum != signal.SIGINT:
        assert signal.Signals(signum).name in lines[0]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux signals and /proc")
@pytest.mark.parametrize("kind", ["sleep", "big"])
@pytest.mark.parametrize("signum, group", [(signal.SIGINT, True), (signal.SIGTERM, False)],
                         ids=["ctrl-c-to-group", "sigterm-to-stage"])
def test_a_signal_ends_pmap_and_its_workers_promptly(start, kind, signum, group):
    proc = start(PMAP_STAGE, kind)
    workers = {int(read_line(proc).split()[1]) for _ in range(2)}
    assert len(workers) == 2
    sent = time.monotonic()
    (os.killpg if group else os.kill)(proc.pid, signum)
    status, err = finish(proc)
    assert status == STATUS[signum], err
    assert_one_line(err, signum)
    # The stage ends its workers before it exits; allow the kernel a moment to finish them off.
    while any(alive(pid) for pid in workers) and time.monotonic() < sent + EXIT_S:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers), "a worker outlived its stage"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux signals")
@pytest.mark.parametrize("fmt", ["npz", "csv"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)   # SIGINT unwound writes before
def test_a_signal_during_a_write_leaves_no_hidden_temporary_file(start, tmp_path, fmt, signum):
    proc = start(WRITE_STAGE, fmt)
    assert read_line(proc).strip() == "ready"
    out = tmp_path / "out"
    assert [p.name for p in out.iterdir() if p.name.startswith(".")], "the write had not begun"
    os.kill(proc.pid, signum)
    status, err = finish(proc)
    assert status == STATUS[signum], err
    assert_one_line(err, signum)
    assert list(out.iterdir()) == []   # neither the hidden temporary file nor a half output


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux signals")
def test_a_second_signal_during_the_orderly_exit_ends_the_stage_at_once(start):
    proc = start(SLOW_CLEANUP_STAGE)
    assert read_line(proc).strip() == "ready"
    os.kill(proc.pid, signal.SIGTERM)
    assert read_line(proc).strip() == "cleaning up"   # the first one unwinds: finally blocks run
    os.kill(proc.pid, signal.SIGINT)
    status, _ = finish(proc)
    assert status == -signal.SIGINT   # the second one ends it by that signal, not after the cleanup


def _fails_on(x):
    if x == 5:
        raise ValueError("bad clip 5")
    time.sleep(0.01)
    return x * x


def test_pmap_results_and_errors_are_unchanged(monkeypatch):
    monkeypatch.delenv(parallel.SCHEDULER_ENV, raising=False)
    monkeypatch.setenv("SER_JOBS", "2")
    import multiprocessing

    children = set(multiprocessing.active_children())
    items = list(range(40))
    assert parallel.pmap(abs, [-x for x in items], desc="t", chunksize=3, disable=True) == items
    with pytest.raises(ValueError, match="bad clip 5"):
        parallel.pmap(_fails_on, items, desc="t", chunksize=1, disable=True)
    assert set(multiprocessing.active_children()) <= children   # the failed pool's workers are ended and reaped


def test_one_line_errors_restores_the_signal_handlers():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    seen = {}

    @one_line_errors
    def main():
        seen.update({s: signal.getsignal(s) for s in before})
        return "done"

    assert main() == "done"
    assert {s: signal.getsignal(s) for s in before} == before
    assert seen[signal.SIGTERM] is not before[signal.SIGTERM]   # SIGTERM was handled while main ran


def test_an_interruption_carries_its_exit_status():
    from ser.core.errors import Interrupted

    assert isinstance(Interrupted(signal.SIGTERM), KeyboardInterrupt)
    assert Interrupted(signal.SIGTERM).status == 143 and Interrupted(signal.SIGINT).status == 130


@pytest.mark.slow
def test_sigterm_ends_the_cli_in_order(tiny_model, tmp_path):
    """The CLI (`python -m ser predict` with its worker processes) answers SIGTERM as a stage
    does: exit 143 and one line, its workers gone (it died on the spot before, status -15)."""
    import shutil
    import threading

    from .conftest import write_speech

    clip = write_speech(tmp_path / "clips" / "c0.wav", index=0, seconds=1.0)
    for i in range(1, 400):
        shutil.copyfile(clip, tmp_path / "clips" / f"c{i}.wav")
    proc = subprocess.Popen([sys.executable, "-m", "ser", "predict", str(tmp_path / "clips"), "--model", str(tiny_model),
                             "--speaker", "file"],
                            cwd=tmp_path, env=checkout_env(SER_JOBS="2"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=as_terminal_job)
    err, started = [], threading.Event()

    def read():
        for chunk in iter(lambda: proc.stderr.read(1), ""):
            err.append(chunk)
            if "clip" in "".join(err[-200:]):   # the progress bar: the workers are at work
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(120), "".join(err)
        deadline = time.monotonic() + 60   # the bar is drawn as the pool starts its workers
        while True:
            children = [int(pid) for task in (Path("/proc") / str(proc.pid) / "task").iterdir()
                        for pid in (task / "children").read_text().split()]
            if children or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert children   # the worker processes, forked by the pmap thread
        proc.send_signal(signal.SIGTERM)
        proc.wait(EXIT_S + 10)
        reader.join(5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = "".join(err)
    assert proc.returncode == 143, text[-2000:]
    assert text.rstrip().splitlines()[-1] == "error: interrupted by SIGTERM" and "Traceback" not in text
    deadline = time.monotonic() + EXIT_S
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in children)
