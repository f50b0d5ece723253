"""Benchmark `python -m ser predict`: Keras vs the exported ONNX model.

Cold start: whole-process wall time to label one 3 s file (median of --runs).
Batch: whole-process wall time over a folder of real clips, reported as clips/s (median).
Run from the project root after `dvc repro` (needs models/model.keras and models/model.onnx).
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import soundfile as sf


def wall(cmd) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default="data/raw/ravdess_speech/Actor_01/03-01-05-01-01-01-01.flac")
    parser.add_argument("--folder", default="data/raw/savee")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for needed in ("models/model.keras", "models/model.onnx", args.file, args.folder):
        if not Path(needed).exists():
            raise SystemExit(f"error: {needed} not found (run `dvc pull` and `dvc repro` first)")
    n_clips = sum(1 for p in Path(args.folder).rglob("*") if p.suffix in (".wav", ".flac"))
    print(f"file: {args.file} ({sf.info(args.file).duration:.2f} s); folder: {args.folder} ({n_clips} clips)")
    print("| backend | cold start, 1 file (s, median) | batch wall (s, median) | batch clips/s |")
    print("|---|---:|---:|---:|")
    for backend in ("keras", "onnx"):
        base = [sys.executable, "-m", "ser", "predict", "--backend", backend, "-q"]
        wall(base + [args.file])  # warm the OS file cache and numba's on-disk cache once
        cold = statistics.median(wall(base + [args.file]) for _ in range(args.runs))
        batch = statistics.median(wall(base + [args.folder]) for _ in range(max(3, args.runs // 2)))
        print(f"| {backend} | {cold:.2f} | {batch:.2f} | {n_clips / batch:.0f} |")


if __name__ == "__main__":
    main()
