"""One long recording made of real clips of one speaker, in a row with pauses between them:
the input of the README's timeline figure and serve screenshot (clips vary their emotion).

    python scripts/demo_talk.py OUT.wav CLIP... [--pause 0.5] [--long-pause 3] [--rate 16000]

``--pause`` seconds of silence follow every clip, ``--long-pause`` the third, so that the
timeline shows a `no speech` stretch. The README's figures: the five JL-Corpus clips of
``../shared/samples`` (male2 encouraging, happy, sad; female1 angry, anxious), in that order."""

import argparse

import numpy as np
import soundfile as sf

from ser.audio.decode import load


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("clips", nargs="+")
    parser.add_argument("--pause", type=float, default=0.5)
    parser.add_argument("--long-pause", type=float, default=3.0)
    parser.add_argument("--rate", type=int, default=16000)
    args = parser.parse_args()
    parts = []
    for i, clip in enumerate(args.clips):
        parts.append(load(clip, args.rate))
        pause = args.long_pause if i == 2 else args.pause
        parts.append(np.zeros(int(pause * args.rate), np.float32))
    sf.write(args.out, np.concatenate(parts), args.rate, subtype="PCM_16")


if __name__ == "__main__":
    main()
