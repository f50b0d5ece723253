"""How time and memory grow with the data: ``dvc repro`` on a corpus N times the size of the
shared four, stage by stage, with each stage's wall time and peak memory.

The corpus is derived from the real recordings (``data/manifest/manifest.csv`` of this project:
the shared corpora, pulled): every copy ``v1..vN`` of every clip is played faster or slower
(pitch and tempo together, 0.92-1.08), tilted in spectrum (EQ, up to 2 dB per octave) and given
white noise at 25-40 dB SNR, under a new speaker id (``<speaker>_v<copy>``): N derived voices per
real one. It is declared as a table corpus (``manifest.tables``, ``docs/corpora.md``), the route a
researcher's own corpus takes, and is the only corpus of the scratch project, so N = 1 is a
workload the size of the shared four.

Each stage runs alone (``dvc repro -s STAGE``, in pipeline order) in a scratch project (a copy of
this checkout's code, ``dvc.yaml`` and ``params.yaml``, with its own DVC cache) while a sampler
reads, every 0.2 s, the proportional set size (PSS: shared pages counted once across forked
workers) of the stage's process and all its workers, summed; and the largest single RSS.

Run from the project root after ``dvc pull`` and ``dvc repro manifest``:
    python scripts/bench_scale.py --n 1 4 --stages manifest prepare augment featurize egemaps encoder embed
The worker-count comparison: ``--jobs 1`` (one local worker) and ``--dask-workers 2`` (a Dask
LocalCluster) against the default (every core).
Results are appended to ``--out`` (JSON lines) and drawn, with all earlier lines, to ``--plot``.
"""

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import soundfile as sf
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("manifest", "prepare", "augment", "featurize", "egemaps", "encoder", "embed", "cv", "loco", "train")
CORPUS = "scale"


def derive(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A new recording from ``y``: speed (pitch and tempo) x0.92-1.08, a spectral tilt of up to
    2 dB per octave around 1 kHz, white noise at 25-40 dB SNR; peak kept below full scale."""
    import soxr

    speed = rng.uniform(0.92, 1.08)
    y = soxr.resample(y, round(sr * speed), sr).astype(np.float64)
    spectrum = np.fft.rfft(y)
    freqs = np.maximum(np.fft.rfftfreq(len(y), 1 / sr), 20.0)
    tilt_db = np.clip(rng.uniform(-2, 2) * np.log2(freqs / 1000.0), -9, 9)
    y = np.fft.irfft(spectrum * 10 ** (tilt_db / 20), len(y))
    power = float(np.mean(y ** 2)) or 1e-12
    y = y + rng.standard_normal(len(y)) * np.sqrt(power / 10 ** (rng.uniform(25, 40) / 10))
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    return (y * (0.95 / peak) if peak > 0.95 else y).astype(np.float32)


def _derive_one(job):
    source, target, seed = job
    y, sr = sf.read(source, dtype="float32", always_2d=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    sf.write(target, derive(y.mean(axis=1), sr, np.random.default_rng(seed)), sr, subtype="PCM_16", format="FLAC")


def build_corpus(project: Path, n: int, seed: int = 0) -> int:
    """``data/raw/scale``: N derived copies of every clip of this project's manifest, and their
    ``labels.csv``. Returns the number of clips."""
    from concurrent.futures import ProcessPoolExecutor

    manifest = pd.read_csv(ROOT / "data" / "manifest" / "manifest.csv")
    corpus_dir = project / "data" / "raw" / CORPUS
    rows, jobs = [], []
    for copy in range(1, n + 1):
        for i, row in enumerate(manifest.itertuples()):
            rel = Path(f"v{copy}") / Path(row.path).relative_to("data/raw").with_suffix(".flac")
            rows.append({"path": rel.as_posix(), "emotion": row.emotion, "speaker": f"{row.speaker}_v{copy}",
                         "gender": row.gender if isinstance(row.gender, str) else ""})
            if not (corpus_dir / rel).is_file():
                jobs.append((ROOT / row.path, corpus_dir / rel, [seed, copy, i]))
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(_derive_one, jobs, chunksize=32))
    pd.DataFrame(rows).to_csv(corpus_dir / "labels.csv", index=False)
    return len(rows)


def make_project(project: Path, n: int) -> None:
    """A scratch DVC project with this checkout's code and pipeline, reading only the derived corpus."""
    project.mkdir(parents=True, exist_ok=True)
    for name in ("ser", "stages"):
        shutil.rmtree(project / name, ignore_errors=True)
        shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", project / "dvc.yaml")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["manifest"]["corpora"] = [CORPUS]
    params["manifest"]["tables"] = {CORPUS: "labels.csv"}
    params["manifest"]["extensions"] = [".flac"]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if not (project / ".dvc").is_dir():
        subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=project, check=True)


class Sampler(threading.Thread):
    """Peak summed PSS of ``stage``'s process (``python -m stages.<stage>``) and its descendants."""

    def __init__(self, root: psutil.Process, stage: str, interval: float = 0.2):
        super().__init__(daemon=True)
        self.root, self.stage, self.interval = root, stage, interval
        self.peak_pss = self.peak_rss = self.peak_processes = 0
        self.done = threading.Event()

    def stage_tree(self):
        for proc in self.root.children(recursive=True):
            try:
                if f"stages.{self.stage}" in " ".join(proc.cmdline()):
                    return [proc, *proc.children(recursive=True)]
            except psutil.Error:
                continue
        return []

    def run(self):
        while not self.done.is_set():
            pss = rss = 0
            tree = self.stage_tree()
            for proc in tree:
                try:
                    info = proc.memory_full_info()
                    pss += info.pss
                    rss = max(rss, info.rss)
                except psutil.Error:
                    pass
            self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
            self.peak_processes = max(self.peak_processes, len(tree))
            self.done.wait(self.interval)


def run_stage(project: Path, stage: str, env: dict | None = None) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen(["dvc", "repro", "-s", "-f", stage], cwd=project, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    sampler = Sampler(psutil.Process(proc.pid), stage)
    sampler.start()
    _, err = proc.communicate()
    sampler.done.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"error: dvc repro -s {stage} failed in {project}:\n{err[-2000:]}")
    return {"stage": stage, "wall_s": round(time.perf_counter() - start, 1),
            "peak_pss_mb": round(sampler.peak_pss / 2**20), "peak_rss_mb": round(sampler.peak_rss / 2**20),
            "processes": sampler.peak_processes}


def start_local_cluster(stack: contextlib.ExitStack, project: Path, workers: int) -> str:
    """A Dask LocalCluster of ``workers`` single-threaded processes that import ``project``'s code
    and resolve its relative paths, as ``docs/protocol.md`` says real workers must; its address."""
    from distributed import LocalCluster

    os.environ["PYTHONPATH"] = str(project)   # inherited by the worker processes
    stack.enter_context(contextlib.chdir(project))
    cluster = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                               dashboard_address=":0", silence_logs=40))
    return cluster.scheduler_address


def plot(records: list[dict], path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from ser.core.plots import plt

    frame = pd.DataFrame(records)
    for column in ("where", "jobs"):   # the scaling curves: local runs on every core, not the worker comparison
        if column in frame:
            frame = frame[frame[column].isna()]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for stage, part in frame.groupby("stage", sort=False):
        part = part.sort_values("n").drop_duplicates("n", keep="last")
        left.plot(part.n, part.wall_s, marker="o", label=stage)
        right.plot(part.n, part.peak_pss_mb / 1024, marker="o", label=stage)
    left.set(xlabel="N (times the shared four corpora)", ylabel="wall time (s)", title="time per stage")
    right.set(xlabel="N (times the shared four corpora)", ylabel="peak PSS, stage + workers (GB)",
              title="memory per stage")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1], help="sizes, in multiples of the shared four")
    parser.add_argument("--stages", nargs="+", default=list(STAGES[:6]), choices=STAGES)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ser-scale"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "scale.jsonl")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "scale.png")
    parser.add_argument("--jobs", type=int, help="SER_JOBS for the stages (default: every core)")
    parser.add_argument("--dask-workers", type=int, help="run the stages on a Dask LocalCluster of this many "
                        "single-threaded worker processes (SER_DASK_SCHEDULER); its workers' memory is not sampled")
    args = parser.parse_args(argv)
    if not (ROOT / "data" / "manifest" / "manifest.csv").is_file():
        raise SystemExit("error: data/manifest/manifest.csv not found: run `dvc pull` and `dvc repro manifest` first")
    machine = f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GB"
    env, where = dict(os.environ), {}
    if args.jobs:
        env["SER_JOBS"], where["jobs"] = str(args.jobs), args.jobs
    for n in args.n:
        project = args.workdir / f"N{n}"
        make_project(project, n)
        start = time.perf_counter()
        clips = build_corpus(project, n)
        print(f"N={n}: {clips} clips derived in {time.perf_counter() - start:.0f} s ({project})", flush=True)
        with contextlib.ExitStack() as stack:
            if args.dask_workers:
                env["SER_DASK_SCHEDULER"] = start_local_cluster(stack, project, args.dask_workers)
                where["where"] = f"dask LocalCluster, {args.dask_workers} workers"
            for stage in [s for s in STAGES if s in args.stages]:
                record = {"n": n, "clips": clips, "machine": machine, **where, **run_stage(project, stage, env)}
                print(json.dumps(record), flush=True)
                with args.out.open("a") as f:
                    f.write(json.dumps(record) + "\n")
    plot([json.loads(line) for line in args.out.read_text().splitlines()], args.plot)


if __name__ == "__main__":
    main()
