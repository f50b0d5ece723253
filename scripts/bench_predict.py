"""Benchmark `python -m ser predict` as a whole process: cold start on one file, and a folder.

Cold start: wall time of a fresh `python -m ser predict` labelling one 3 s file, from process
start to exit (median of --runs). Batch: the same over a folder, as clips/s. Variants run
interleaved, so drift in the machine's speed hits them alike.

`--before DIR --before-model DIR` adds an older checkout (e.g. `git worktree add /tmp/before
<commit>`) with a model bundle that checkout can read, for before/after tables.
Run from the project root after `dvc repro` (needs models/).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def wall(cmd, checkout: Path) -> float:
    """Seconds one run of ``cmd`` takes, importing ``ser`` from ``checkout`` (its working
    directory, which `python -m` puts first on the path)."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=checkout)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default="data/raw/ravdess_speech/Actor_01/03-01-05-01-01-01-01.flac")
    parser.add_argument("--folder", default="data/raw/savee")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--before", type=Path, help="an older checkout to compare with")
    parser.add_argument("--before-model", type=Path, help="a model bundle the older checkout can read")
    args = parser.parse_args()
    for needed in ("models/bundle.json", args.file, args.folder):
        if not (ROOT / needed).exists():
            raise SystemExit(f"error: {needed} not found (run `dvc pull` and `dvc repro` first)")
    if bool(args.before) != bool(args.before_model):
        raise SystemExit("error: --before and --before-model go together")
    variants = [("this checkout, ONNX", ROOT, ROOT / "models", "onnx"),
                ("this checkout, Keras", ROOT, ROOT / "models", "keras")]
    if args.before:
        variants.insert(0, (f"{args.before} (before), ONNX", args.before.resolve(), args.before_model.resolve(), "onnx"))
    n_clips = sum(1 for p in (ROOT / args.folder).rglob("*") if p.suffix in (".wav", ".flac"))
    print(f"file: {args.file} ({sf.info(str(ROOT / args.file)).duration:.2f} s); folder: {args.folder} ({n_clips} clips); "
          f"{args.runs} runs each, interleaved; {os.cpu_count()} cores")
    commands = {label: [sys.executable, "-m", "ser", "predict", "-q", "--backend", backend, "--model", str(model)]
                for label, _, model, backend in variants}
    checkouts = {label: checkout for label, checkout, _, _ in variants}
    cold = {label: [] for label in commands}
    batch = {label: [] for label in commands}
    file, folder = str(ROOT / args.file), str(ROOT / args.folder)
    for label, cmd in commands.items():
        wall(cmd + [file], checkouts[label])   # warm the OS file cache once
    for run in range(args.runs):
        for label, cmd in commands.items():
            cold[label].append(wall(cmd + [file], checkouts[label]))
            if run < 3:
                batch[label].append(wall(cmd + [folder], checkouts[label]))
    print("| variant | cold start, 1 file: median (min-max) s | folder: median s | clips/s |")
    print("|---|---:|---:|---:|")
    for label in commands:
        c, b = cold[label], statistics.median(batch[label])
        print(f"| {label} | {statistics.median(c):.2f} ({min(c):.2f}-{max(c):.2f}) | {b:.1f} | {n_clips / b:.0f} |")


if __name__ == "__main__":
    main()
