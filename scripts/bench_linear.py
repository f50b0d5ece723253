"""Do the in-memory steps over all clips grow linearly with their number? Each is timed on
synthetic tables of n clips (n/170 speakers, as the shared four corpora have: 4235 clips, 25
speakers) at n, 4n and 16n; a linear step takes ~4x and ~16x, a quadratic one ~16x and ~256x.

The steps: the manifest's content-duplicate grouping (``content_duplicates``), the balancing
(``balance``), the fold assignment (``assign_folds``), the per-speaker statistics
(``normalize`` by speaker, and by file: every test clip alone, as ``ua_file`` does), and the
by-reference draws (``draw_references``, k = 3).

    python scripts/bench_linear.py [--n 4235] [--repeats 3]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ser.data.manifest import content_duplicates  # noqa: E402
from ser.data.splits import assign_folds, balance  # noqa: E402
from ser.model.normalize import draw_references, normalize  # noqa: E402

CLASSES = ("angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
DIMS = 64   # columns of the per-clip inputs normalized (the shipped model's are wider: time scales with them)


def table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    speakers = max(5, n // 170)
    return pd.DataFrame({"path": [f"data/raw/c/{i:07d}.wav" for i in range(n)],
                         "speaker": rng.integers(0, speakers, n).astype(str),
                         "emotion": rng.choice(CLASSES, n)})


def steps(frame: pd.DataFrame):
    n = len(frame)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, DIMS)).astype(np.float32)
    prior = {"mean": np.zeros(DIMS), "var": np.ones(DIMS)}
    digests = [f"{i % (n - n // 50)}" for i in range(n)]   # 2 % of the files are copies of others
    paths, emotions = frame.path.tolist(), frame.emotion.tolist()
    speakers = frame.speaker.to_numpy()
    return {
        "content duplicates": lambda: content_duplicates(paths, emotions, digests),
        "balance": lambda: balance(frame, 42),
        "fold assignment": lambda: assign_folds(frame, 5, "speaker", 42),
        "statistics by speaker": lambda: normalize(x, speakers, "speaker", prior, 2, 10),
        "statistics by file": lambda: normalize(x, np.arange(n), "speaker", prior, 2, 10),
        "reference draws (k=3)": lambda: draw_references(speakers, 3, np.random.default_rng(0)),
    }


def timed(step, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=4235)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [args.n, 4 * args.n, 16 * args.n]
    times = {}
    for n in sizes:
        for name, step in steps(table(n)).items():
            times.setdefault(name, []).append(timed(step, args.repeats))
    print(f"| step | {' | '.join(f'n = {n}' for n in sizes)} | x{sizes[1] // sizes[0]} | x{sizes[2] // sizes[0]} |")
    print("|---|" + "---:|" * (len(sizes) + 2))
    for name, ts in times.items():
        print(f"| {name} | " + " | ".join(f"{t * 1000:.1f} ms" for t in ts)
              + f" | {ts[1] / ts[0]:.1f} | {ts[2] / ts[0]:.1f} |")


if __name__ == "__main__":
    main()
