"""Order-preserving parallel map with a progress bar."""

import os
from concurrent.futures import ProcessPoolExecutor

from tqdm import tqdm


def n_jobs() -> int:
    """Worker processes: ``SER_JOBS`` if set, else every core. Results never depend on it."""
    return max(1, int(os.environ.get("SER_JOBS", os.cpu_count() or 1)))


def _die_with_parent():
    """Ask Linux to end this worker when the stage process dies, even by SIGKILL: otherwise a
    killed stage leaves its workers waiting forever for work. A no-op elsewhere."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _init_worker():
    _die_with_parent()
    # Each worker already owns a core: BLAS/OpenMP thread pools inside workers would
    # oversubscribe the machine (measured 2x slower) and make float sums depend on core count.
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def pmap(fn, items, desc: str, chunksize: int = 16, disable: bool = False) -> list:
    """``[fn(x) for x in items]`` across processes, in order, with a tqdm bar labelled ``desc``."""
    items = list(items)
    jobs = min(n_jobs(), max(1, len(items)))
    if jobs == 1:
        return [fn(x) for x in tqdm(items, desc=desc, unit="clip", disable=disable)]
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker) as pool:
        return list(tqdm(pool.map(fn, items, chunksize=chunksize), total=len(items), desc=desc, unit="clip",
                         disable=disable))
