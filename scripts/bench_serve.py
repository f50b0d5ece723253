"""Benchmark `python -m ser serve`: start-up, then warm latency of one 3 s clip per request.

Start-up: wall time from launching `python -m ser serve --port 0` to its `serving http://...`
line (bundle loaded and warmed up, socket listening), median of --starts launches. Warm
latency: --requests sequential `POST /api/predict` of --file after the first one, as the
server's own time (its `Server-Timing: total` header: from the request's arrival to its answer,
upload included) and as the client's round trip. Then --concurrent requests at once: all must
be answered. With --reference FILE..., every request also carries those clips of the voice as
`reference` fields (the page's "Your voice" panel): the server caches their features, so a warm
request pays for the target only. Run from the project root after `dvc repro` (needs models/),
on a quiet machine.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def start(model: Path):
    """``(process, url, seconds to its serving line)``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ser", "serve", "--model", str(model), "--port", "0", "-q"],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    line = proc.stdout.readline()
    seconds = time.perf_counter() - began
    if not line.startswith("serving "):
        proc.kill()
        raise SystemExit(f"error: serve did not start ({line.strip() or 'no output'})")
    return proc, line.split()[1], seconds


def post(url: str, audio: bytes, name: str, references=()):
    """``(server ms, round-trip ms, receive ms, analyse ms)`` of one request, which must succeed.
    ``references``: ``(name, bytes)`` clips of the voice sent with it."""
    began = time.perf_counter()
    files = [("file", (name, audio))] + [("reference", ref) for ref in references]
    response = requests.post(url + "api/predict", files=files, timeout=120)
    round_trip = (time.perf_counter() - began) * 1000
    response.raise_for_status()
    timing = dict(entry.strip().split(";dur=") for entry in response.headers["Server-Timing"].split(","))
    return float(timing["total"]), round_trip, float(timing["receive"]), float(timing["analyse"])


def describe(values) -> str:
    values = sorted(values)
    return (f"median {statistics.median(values):.1f} ms, p90 {values[int(0.9 * (len(values) - 1))]:.1f}, "
            f"min {values[0]:.1f}, max {values[-1]:.1f} (n={len(values)})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models")
    parser.add_argument("--file", type=Path, default=ROOT.parent / "shared/samples/jl_corpus/female1_anxious_15a_2.wav",
                        help="a 3 s clip (default: a JL-Corpus recording in ../shared)")
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--requests", type=int, default=25)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--reference", type=Path, nargs="+", default=[], metavar="FILE",
                        help="clips of the voice sent with every request (the page's 'Your voice')")
    args = parser.parse_args()
    for needed in (args.model / "bundle.json", args.file, *args.reference):
        if not needed.exists():
            raise SystemExit(f"error: {needed} not found (run `dvc pull` and `dvc repro` first)")
    audio = args.file.read_bytes()
    refs = [(f.name, f.read_bytes()) for f in args.reference]
    print(f"file: {args.file.name} ({sf.info(str(args.file)).duration:.2f} s, {len(audio) / 1024:.0f} KB); "
          f"model: {args.model}; {os.cpu_count()} cores"
          + (f"; reference: {len(refs)} clips, {sum(sf.info(str(f)).duration for f in args.reference):.1f} s"
             if refs else ""))
    startups = []
    for i in range(args.starts):
        proc, url, seconds = start(args.model)
        startups.append(seconds)
        if i < args.starts - 1:
            proc.terminate()
            proc.wait()
    try:
        print(f"start-up to 'serving' (bundle loaded, warmed up): median {statistics.median(startups):.2f} s "
              f"({', '.join(f'{s:.2f}' for s in startups)})")
        first = post(url, audio, args.file.name, refs)
        print(f"first request after start-up: server {first[0]:.1f} ms, round trip {first[1]:.1f} ms"
              + (" (the reference featurized and cached)" if refs else ""))
        warm = [post(url, audio, args.file.name, refs) for _ in range(args.requests)]
        print(f"warm, server time: {describe([t[0] for t in warm])}")
        print(f"  of which receiving the upload: {describe([t[2] for t in warm])}")
        print(f"  of which the analysis (model thread): {describe([t[3] for t in warm])}")
        print(f"warm, round trip:  {describe([t[1] for t in warm])}")
        began = time.perf_counter()
        with ThreadPoolExecutor(args.concurrent) as pool:
            together = list(pool.map(lambda _: post(url, audio, args.file.name, refs), range(args.concurrent)))
        print(f"{args.concurrent} at once: all answered in {time.perf_counter() - began:.2f} s "
              f"(slowest server time {max(t[0] for t in together):.0f} ms: requests wait for the one model thread)")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
