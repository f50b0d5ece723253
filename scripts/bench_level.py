"""Level invariance of the shipped model on real recordings: the same clip as a float file at
several gains, each labelled alone; prints the largest change of any probability and how many
clips changed label.

    python scripts/bench_level.py [--model models] [--clips 20] [--gains 1 0.3 0.1 0.03]

Clips: every 60th RAVDESS speech file of data/raw (run `dvc pull` first)."""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from ser.app.predict import Predictor


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models")
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--gains", type=float, nargs="+", default=[1.0, 0.3, 0.1, 0.03])
    args = parser.parse_args()
    clips = sorted(Path("data/raw/ravdess_speech").rglob("*.flac"))[::60][:args.clips]
    if not clips:
        raise SystemExit("error: no clips under data/raw/ravdess_speech (run `dvc pull` first)")
    predictor = Predictor(args.model)
    worst, changed, used = 0.0, 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, clip in enumerate(clips):
            y, sr = sf.read(clip, dtype="float32")
            files = []
            for gain in args.gains:
                files.append(Path(tmp) / f"{i}_{gain}.wav")
                sf.write(files[-1], y * gain, sr, subtype="FLOAT")
            results = predictor.analyse(files, grouping="file", progress=False)
            if not all(r.analysed for r in results):
                continue
            probs = np.stack([r.probabilities.mean(axis=0) for r in results])
            used += 1
            worst = max(worst, float(np.abs(probs - probs[0]).max()))
            changed += int(len(set(probs.argmax(axis=1))) > 1)
    print(f"{used} RAVDESS clips, float files at x{', x'.join(f'{g:g}' for g in args.gains)}: largest probability "
          f"change {worst:.2e}; clips whose label changed: {changed}")


if __name__ == "__main__":
    main()
