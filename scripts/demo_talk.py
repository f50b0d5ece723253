"""One long recording made of real clips of one speaker, in a row with pauses between them:
the input of the README's timeline figure and serve screenshot (clips vary their emotion).

    python scripts/demo_talk.py OUT.flac CLIP... [--pause 1.0] [--rate 16000]

A pause of ``--pause`` seconds of silence follows every clip (a longer one after the third, so
the timeline shows a `no speech` stretch)."""

import argparse

import numpy as np
import soundfile as sf

from ser.audio import load


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
