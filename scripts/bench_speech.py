"""Benchmark the speech-presence check and long inputs.

1. Cost of the check per clip: Silero VAD (``ser.audio.speech``) on every decoded clip of a folder
   (default: SAVEE, 360 real clips), median ms per clip and per second of audio, and the
   one-off model load.
2. A long input: ``python -m ser predict`` on an hour of -60 dBFS hiss (written to a scratch
   file), wall time and peak memory (``resource.getrusage`` of the child), answer included.
Run from the project root after `dvc repro` (needs models/).
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ser.audio import decode, speech  # noqa: E402
from ser.bundle.format import load_bundle  # noqa: E402


def vad_cost(folder: Path, bundle):
    start = time.perf_counter()
    speech.detector()
    load_s = time.perf_counter() - start
    per_clip, per_second, voiced = [], [], []
    for path in sorted(p for p in folder.rglob("*") if p.suffix in (".wav", ".flac")):
        # As predict checks it: the audio as decoded, before cleaning (pauses and all).
        y = decode.load(path, bundle.sample_rate)
        start = time.perf_counter()
        seconds = speech.speech_seconds(y, bundle.sample_rate, bundle.analysis.speech.threshold)
        took = time.perf_counter() - start
        per_clip.append(took)
        per_second.append(took / (len(y) / bundle.sample_rate))
        voiced.append(seconds >= bundle.analysis.speech.min_speech_s)
    return load_s, per_clip, per_second, voiced


def long_input(hours: float, model: Path):
    sr = 16000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hiss.wav"
        rng = np.random.default_rng(0)
        with sf.SoundFile(path, "w", sr, 1, subtype="PCM_16") as f:
            for _ in range(int(hours * 60)):   # a minute at a time
                f.write(0.001 * rng.standard_normal(60 * sr))
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "ser", "predict", "-q", "--model", str(model), str(path)],
                             capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak_mb, run.stdout.strip().splitlines()[-1], run.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default="data/raw/savee")
    parser.add_argument("--model", default="models")
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args()
    bundle = load_bundle(ROOT / args.model)
    load_s, per_clip, per_second, voiced = vad_cost(ROOT / args.folder, bundle)
    print(f"VAD model load: {load_s * 1000:.0f} ms")
    print(f"{args.folder}: {len(per_clip)} clips, {sum(voiced)} with speech; VAD per clip: median "
          f"{statistics.median(per_clip) * 1000:.1f} ms (max {max(per_clip) * 1000:.1f}); per second of audio: "
          f"{statistics.median(per_second) * 1000:.1f} ms")
    wall, peak_mb, last, code = long_input(args.hours, ROOT / args.model)
    print(f"{args.hours:g} h of -60 dBFS hiss: {wall:.1f} s, peak RSS {peak_mb:.0f} MB, exit {code}: {last}")


if __name__ == "__main__":
    main()
