"""Order-preserving parallel map with a progress bar: local processes, or a Dask cluster.

Every per-clip loop of the data stages (and of ``ser predict``) goes through ``pmap``. Where
it runs is chosen by the environment, never by ``params.yaml``: ``SER_JOBS`` caps the local
worker processes, and ``SER_DASK_SCHEDULER`` (a scheduler address such as
``tcp://10.0.0.5:8786``) sends the work to a Dask cluster instead. Both are environment
variables on purpose: where the work runs does not change a single byte of the results, so
it must not invalidate DVC stages the way a changed param would.
"""

import collections
import contextlib
import itertools
import os
import sys
import time

from ser.core.errors import EXIT_SIGNALS, ConfigError, SerError

SCHEDULER_ENV = "SER_DASK_SCHEDULER"
CONNECT_TIMEOUT_S = 10  # to reach the scheduler, and again for at least one worker to be there


def n_jobs() -> int:
    """Worker processes: ``SER_JOBS`` if set, else every core. Results never depend on it."""
    raw = os.environ.get("SER_JOBS", "").strip()
    if not raw:
        return max(1, os.cpu_count() or 1)
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 4096:
        raise ConfigError(f"SER_JOBS: must be a whole number of worker processes from 1 to 4096 (got {raw!r})")
    return int(raw)


def _die_with_parent():
    """Ask Linux to end this worker when the stage process dies, even by SIGKILL: otherwise a
    killed stage leaves its workers waiting forever for work. A no-op elsewhere. (Linux sends it
    when the thread that forked the worker ends: pmap's driver thread, which outlives the pool.)"""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_signals():
    """Signals in a worker: SIGINT ignored, SIGTERM and SIGHUP back to their default action.

    A terminal's Ctrl-C goes to the whole process group, the stage and each of its workers. A
    worker that took it as a KeyboardInterrupt while sending a result back left the pool's
    result pipe half-way through a message, which the stage's pool then read forever: the stage
    hung (and its workers with it). The stage alone answers Ctrl-C; ``pmap`` then ends the
    workers. A worker forked from a stage also inherits the stage's handlers
    (``ser.core.errors.signals_as_interrupts``), under which ``pmap``'s SIGTERM and the death signal
    above would be an exception the worker survives: here they end it, as they should."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    # Blocked since the fork (pmap's driver thread blocks them), so that none arrived under the
    # inherited handlers: what came meanwhile is delivered now, under these.
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, EXIT_SIGNALS)


def _init_worker():
    _worker_signals()
    _die_with_parent()
    # Each worker already owns a core: BLAS/OpenMP thread pools inside workers would
    # oversubscribe the machine (measured 2x slower) and make float sums depend on core count.
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


ABANDON_GRACE_S = 2   # how long a terminated worker (then the pool's thread) is waited for


def _abandon(pool) -> None:
    """End a ``ProcessPoolExecutor`` now, whatever its state, without ever blocking for long: the
    work not started is cancelled, the workers are terminated (a running chunk is not waited
    for; SIGKILL after ``ABANDON_GRACE_S``), and the pool's manager thread is freed.

    ``shutdown(wait=True)``, which the ``with`` block calls, is no way to stop: it waits for the
    running chunks, and for a manager thread that a worker ended half-way through sending a
    result leaves reading the rest of that result forever (the interpreter joins that thread
    again at exit). The pool's internals used here (``_processes``, ``_result_queue``,
    ``_executor_manager_thread``; Python 3.14 has ``terminate_workers``) are read with
    defaults: what is missing is skipped."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    results = getattr(pool, "_result_queue", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + ABANDON_GRACE_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.exitcode is None:
            process.kill()
            process.join(1)
    # The workers are gone: with this process's own writing end of the result pipe closed too,
    # a manager thread still waiting for the rest of a result reads end-of-file, takes the pool
    # for broken and returns.
    writer = getattr(results, "_writer", None)
    if writer is not None:
        with contextlib.suppress(OSError):
            writer.close()
    if manager is not None:
        manager.join(ABANDON_GRACE_S)


def pmap(fn, items, desc: str, chunksize: int = 16, disable: bool = False, total: int | None = None) -> list:
    """``[fn(x) for x in items]`` across processes, in order, with a tqdm bar labelled ``desc``
    (``pmap_iter``, collected)."""
    with contextlib.closing(pmap_iter(fn, items, desc, chunksize, disable, total)) as results:
        return list(results)


def pmap_iter(fn, items, desc: str, chunksize: int = 16, disable: bool = False, total: int | None = None):
    """``fn(x) for x in items`` across processes, yielded in order, with a tqdm bar labelled ``desc``.

    Streaming both ways, so memory does not grow with the number of items: ``items`` may be any
    iterable (a generator reading clips from disk) and is drawn only a few chunks ahead of the
    workers, and a result is handed on as soon as it and every one before it are done, with a
    bounded number of chunks (``WINDOW_PER_WORKER`` per worker) between what was drawn and what was
    consumed. ``total`` is ``len(items)`` for the bar when ``items`` has no length.

    With ``SER_DASK_SCHEDULER`` set, the items go in chunks to the Dask cluster at that address
    (see ``dask_iter``); otherwise to ``SER_JOBS`` local processes. Close the generator (or use
    ``contextlib.closing``) when not consuming it to its end: that ends the workers at once.
    """
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    address = os.environ.get(SCHEDULER_ENV, "").strip()
    if address and total != 0:
        yield from dask_iter(fn, items, address, desc, chunksize, disable, total)
        return
    from tqdm import (
        tqdm,  # imported here: `python -m ser predict` on a few files never needs it
    )

    jobs = n_jobs() if total is None else min(n_jobs(), max(1, total))
    with tqdm(total=total, desc=desc, unit="clip", disable=disable) as bar:
        if jobs == 1:
            from threadpoolctl import threadpool_limits

            for chunk in _chunks(items, chunksize):
                # Single-threaded BLAS/OpenMP, as in a worker: float results must not depend on
                # SER_JOBS (a multithreaded sum rounds differently). Not held while the caller runs.
                with threadpool_limits(limits=1):
                    part = [fn(x) for x in chunk]
                bar.update(len(part))
                yield from part
        else:
            yield from _local_iter(fn, items, jobs, chunksize, bar)


WINDOW_PER_WORKER = 4   # chunks drawn but not yet consumed, per worker: enough to keep every worker busy


def _chunks(items, size: int):
    """Lists of ``size`` consecutive items (the last may be shorter), drawn lazily."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _local_iter(fn, items, jobs: int, chunksize: int, bar):
    """``pmap_iter`` on ``jobs`` local worker processes, ending them promptly on any exception
    and when the generator is closed early.

    The pool is driven from a thread of its own, and this (main) thread only takes its results:
    Ctrl-C and SIGTERM (``ser.core.errors.signals_as_interrupts``) raise in the main thread at
    any instruction, and one that lands inside the pool's own code (``submit``, ``shutdown``) can
    leave a lock of the pool held for good, on which the pool's manager thread then waits forever
    (seen: the work-id queue's lock, taken by ``submit``). The two threads talk only through
    ``queue.SimpleQueue``, which holds no such lock. The chunks are submitted one by one, not
    with ``pool.map``: on an exception, ``map`` cancels the futures not started from its thread,
    and a pool that then finds its workers terminated fails on those cancelled futures
    (InvalidStateError, a traceback from its thread, its cleanup skipped). Here only the pool's
    own thread cancels them (``shutdown(cancel_futures=True)`` in ``_abandon``).

    Memory is bounded: the driver draws a new chunk only while fewer than ``WINDOW_PER_WORKER *
    jobs`` chunks are drawn and not yet taken by the main thread (running, done, or queued).
    """
    import queue
    import signal
    import threading
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker)
    outcome = queue.SimpleQueue()   # driver -> main: ("part", results) ... then ("done", None) or ("error", err)
    taken = queue.SimpleQueue()     # main -> driver: True per part consumed; None: stop
    window = WINDOW_PER_WORKER * jobs

    def drive():
        # Signals are the main thread's business; blocked here, they are blocked in the workers
        # this thread forks too, until _worker_signals has set theirs.
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, EXIT_SIGNALS)
        try:
            chunks = _chunks(items, chunksize)
            pending = collections.deque(pool.submit(_map_list, fn, c) for c in itertools.islice(chunks, window))
            unconsumed = 0
            while pending:
                part = pending.popleft().result()
                outcome.put(("part", part))
                del part   # held once, by the main thread
                unconsumed += 1
                while len(pending) + unconsumed >= window:   # wait for the main thread before drawing more
                    if taken.get() is None:
                        return
                    unconsumed -= 1
                chunk = next(chunks, None)
                if chunk is not None:
                    pending.append(pool.submit(_map_list, fn, chunk))
            pool.shutdown()   # all done: the workers are told to exit, and do
            outcome.put(("done", None))
        except BaseException as err:   # noqa: BLE001 - handed to the main thread, raised there
            outcome.put(("error", err))

    driver = threading.Thread(target=drive, name="pmap", daemon=True)
    try:
        driver.start()
        while True:
            kind, value = outcome.get()
            if kind == "error":
                raise value
            if kind == "done":
                break
            taken.put(True)
            bar.update(len(value))
            yield from value
            del value
    except BaseException:   # an error in fn, Ctrl-C, SIGTERM, the generator closed early, ...
        _abandon(pool)
        taken.put(None)   # a driver waiting for the main thread returns
        driver.join(ABANDON_GRACE_S)   # its futures failed with the pool: it ends
        raise


def _map_list(fn, chunk: list) -> list:
    """One local task: ``fn`` over a chunk of items."""
    return [fn(x) for x in chunk]


def _undo_dask_malloc_trim():
    """Give glibc's allocator room again in a Dask worker (a no-op elsewhere).

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also pins the
    mmap threshold at 128 KiB: every STFT-sized temporary then comes from a fresh mmap and
    page-faults on first touch, and featurize ran 2.6x slower per clip than in a plain
    process (BENCHMARKS.md section 5). Thresholds of 32/64 MiB restore plain-process speed;
    allocation never changes a result."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 2 ** 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 64 * 2 ** 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _run_chunk(fn, chunk):
    """One Dask task: ``fn`` over a chunk with single-threaded BLAS/OpenMP, as in a local worker,
    so float results do not depend on the machine or on how many threads a worker has. The
    limit is set (not restored) on every chunk: a worker's threads share one process, and a
    library loaded by an earlier chunk is caught by the next."""
    from threadpoolctl import threadpool_limits

    if os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        _undo_dask_malloc_trim()
    threadpool_limits(limits=1)
    return [fn(x) for x in chunk]


async def _probe(address: str) -> str:
    """The kind of Dask server at ``address`` (``Scheduler``, ``Worker``, ...), asked over a bare
    connection: Dask's handshake, then its ``identity`` call."""
    from distributed.comm import connect as open_comm
    from distributed.security import Security

    comm = await open_comm(address, timeout=CONNECT_TIMEOUT_S, **Security().get_connection_args("client"))
    try:
        await comm.write({"op": "identity", "reply": True})
        reply = await comm.read()
    finally:
        comm.abort()
    return reply.get("type", "unknown") if isinstance(reply, dict) else "unknown"


def _probe_reason(address: str) -> str | None:
    """Why ``address`` is no Dask scheduler this process can use, or None when it is one.

    Dask's own connect waits for the server's handshake without a deadline, as does a Client:
    a server that accepts but never speaks Dask (a plain TCP or HTTP server) would hang the
    stage forever. So the probe has one deadline for all of it, and runs on its own thread
    and event loop, which works whether or not the caller already runs one (Jupyter)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    # Dask's connect gives up by itself after CONNECT_TIMEOUT_S (refused, unresolvable); the
    # extra second lets its clearer message win over our deadline.
    deadline = CONNECT_TIMEOUT_S + 1
    with ThreadPoolExecutor(1) as thread:
        try:
            kind = thread.submit(asyncio.run, asyncio.wait_for(_probe(address), deadline)).result()
        except TimeoutError:
            # Python >= 3.11: asyncio's TimeoutError is the builtin one, an OSError: test it first.
            return f"nothing there answered in Dask's protocol within {deadline} s"
        except (OSError, ValueError, TypeError) as err:
            return (str(err).splitlines() or [type(err).__name__])[0]
        except Exception as err:  # noqa: BLE001 - a server that answers garbage fails Dask's decoding in many ways
            return f"the server there does not speak Dask's protocol ({type(err).__name__})"
    if kind != "Scheduler":
        return f"a Dask {kind} answered, not a scheduler"
    return None


def connect(address: str):
    """A ``distributed.Client`` for the scheduler at ``address`` with at least one worker,
    or a one-line ``SerError`` naming ``SER_DASK_SCHEDULER``."""
    try:
        from distributed import Client
    except ImportError as err:
        raise SerError(f"{SCHEDULER_ENV}={address} needs dask.distributed: pip install -r requirements.txt "
                       f"({err})") from None
    # Probe with a bare connection first: a Client that failed to connect still tries to close
    # itself at exit and prints tracebacks about it, and a Client can wait forever (_probe_reason).
    reason = _probe_reason(address)
    if reason is None:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, ValueError, TypeError) as err:
            reason = (str(err).splitlines() or [type(err).__name__])[0]
    if reason is not None:
        raise SerError(f"{SCHEDULER_ENV}={address}: cannot connect to a Dask scheduler there ({reason})")
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError):
        client.close()
        raise SerError(f"{SCHEDULER_ENV}={address}: the Dask scheduler has no workers "
                       f"(none joined within {CONNECT_TIMEOUT_S} s; start some with `dask worker {address}`)") from None
    return client


def dask_iter(fn, items, address: str, desc: str, chunksize: int = 16, disable: bool = False,
              total: int | None = None):
    """``fn(x) for x in items`` on the Dask cluster at ``address``, yielded in order, with a tqdm bar.

    Chunks of items are one task each; a bounded number (``WINDOW_PER_WORKER`` per worker
    thread) are drawn from ``items`` and not yet consumed at any time, done or not, so neither
    this process nor the scheduler holds all the clips or all the results. The workers need this
    environment (requirements.txt, this checkout on ``PYTHONPATH``) and, for stages that read
    files, the same paths. An error in ``fn`` is raised here as it would be locally; the
    remaining tasks are cancelled.
    """
    from distributed import as_completed
    from tqdm import tqdm

    client = connect(address)
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]  # all of them, not the first few
        threads = sum(w.get("nthreads", 1) for w in workers.values()) or 1
        print(f"{desc}: running on the Dask cluster at {address} with {len(workers)} workers", file=sys.stderr)
        # Bigger chunks than local ones: a Dask task costs milliseconds of scheduling and transfer.
        step = max(1, chunksize, (total or 0) // (16 * threads))
        chunks = enumerate(_chunks(items, step))
        window = WINDOW_PER_WORKER * threads
        done = {}       # chunk index -> results, until every chunk before it is yielded
        index_of = {}   # future key -> chunk index
        running = as_completed(loop=client.loop)

        # fn travels once to every worker, not with every chunk: it may carry large constants
        # (featurize's filterbanks are 0.3 MB).
        [shared_fn] = client.scatter([fn], broadcast=True, hash=False)

        def submit_next():
            i, chunk = next(chunks, (None, None))
            if chunk is not None:
                future = client.submit(_run_chunk, shared_fn, chunk, pure=False)
                index_of[future.key] = i
                running.add(future)

        for _ in range(window):
            submit_next()
        following = 0   # the next chunk to yield
        with tqdm(total=total, desc=desc, unit="clip", disable=disable) as bar:
            for future in running:
                done[index_of.pop(future.key)] = future.result()
                future.release()
                while following in done:
                    part = done.pop(following)
                    following += 1
                    bar.update(len(part))
                    yield from part
                    submit_next()   # one chunk consumed: one more drawn
    finally:
        client.close()

