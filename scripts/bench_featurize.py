"""Benchmark the featurize stage's per-clip work: local processes vs a Dask LocalCluster.

Runs ``ser.features.handcrafted.extract_clips`` (what ``stages/featurize.py`` calls, through ``ser.core.parallel.pmap``)
over the first --clips clips of data/prepared, (a) with SER_JOBS=2 local processes and (b) with
SER_DASK_SCHEDULER pointing at a LocalCluster(n_workers=2, threads_per_worker=1). Each gets one
untimed warm-up run (imports, numba compilation) and --runs timed runs; clips/s is the median.
Cluster start-up is timed separately. Also checks both give byte-identical arrays.
Run from the project root after `dvc repro prepare`:  python scripts/bench_featurize.py
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's ser

from ser.audio.pack import Pack  # noqa: E402
from ser.core.config import load_params  # noqa: E402
from ser.core.parallel import SCHEDULER_ENV  # noqa: E402
from ser.features.handcrafted import extract_clips  # noqa: E402


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def timed_runs(clips, sample_rate, cfg, runs):
    extract_clips(clips, sample_rate, cfg)  # warm-up
    times, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = extract_clips(clips, sample_rate, cfg)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    params = load_params()
    cfg, sample_rate = params["featurize"], params["audio"]["sample_rate"]
    pack = Pack("data/prepared/audio.npz")
    clips = [pack.pcm(i) for i in range(min(args.clips, len(pack)))]
    seconds = sum(len(c) for c in clips) / sample_rate

    os.environ.pop(SCHEDULER_ENV, None)
    os.environ["SER_JOBS"] = "2"
    local_s, local_out = timed_runs(clips, sample_rate, cfg, args.runs)

    from distributed import LocalCluster

    start = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=40)
    startup_s = time.perf_counter() - start
    try:
        os.environ[SCHEDULER_ENV] = cluster.scheduler_address
        start = time.perf_counter()
        extract_clips(clips[:2], sample_rate, cfg)  # first task: workers import librosa, numba compiles
        first_s = time.perf_counter() - start
        dask_s, dask_out = timed_runs(clips, sample_rate, cfg, args.runs)
    finally:
        os.environ.pop(SCHEDULER_ENV, None)
        cluster.close()
    identical = all(a.tobytes() == b.tobytes() for a, b in zip(local_out, dask_out))

    print(f"machine: {os.cpu_count()} cores (nproc), {cpu_model()}, Python {platform.python_version()}")
    print(f"work: first {len(clips)} clips of data/prepared ({seconds:.0f} s of audio), "
          f"featurize params of params.yaml, median of {args.runs} runs after one warm-up")
    print(f"Dask LocalCluster(2) start-up: {startup_s:.1f} s, then {first_s:.1f} s for the first 2 clips "
          f"(worker imports); outputs byte-identical: {identical}")
    print()
    print("| where | wall (s, median) | clips/s |")
    print("|---|---:|---:|")
    print(f"| local processes (`SER_JOBS=2`) | {local_s:.2f} | {len(clips) / local_s:.1f} |")
    print(f"| Dask `LocalCluster(n_workers=2, threads_per_worker=1)` | {dask_s:.2f} | {len(clips) / dask_s:.1f} |")


if __name__ == "__main__":
    main()
