"""Stage featurize: feature vector and log-mel image of every clip, plus example spectrogram PNGs."""

import contextlib
import itertools
from pathlib import Path

from ser.audio.pack import Pack
from ser.core.config import load_params
from ser.core.errors import DataError, one_line_errors
from ser.core.files import read_csv, read_npz_mapped
from ser.core.plots import save_spectrogram_examples
from ser.features.handcrafted import extract_iter, save_features

OUT = Path("data/features")


@one_line_errors
def main():
    params = load_params()
    cfg, sample_rate, classes = params["featurize"], params["audio"]["sample_rate"], params["labels"]["classes"]
    table = read_csv("data/augmented/clips.csv")
    # The table lists the originals, then augment's copies: each read from its own pack.
    originals, copies = Pack("data/prepared/audio.npz"), Pack("data/augmented/copies.npz")
    if len(originals) + len(copies) != len(table):
        raise DataError(f"data/augmented/clips.csv: {len(table)} clips, but data/prepared/audio.npz and "
                        f"data/augmented/copies.npz hold {len(originals)} + {len(copies)}; rerun `dvc repro augment`")
    clips = itertools.chain(originals.pcms(), copies.pcms())
    with contextlib.closing(extract_iter(clips, sample_rate, cfg, total=len(table))) as extracted:
        save_features(OUT, table, extracted, classes, cfg, sample_rate)
    spectrograms = read_npz_mapped(OUT / "features.npz", "spectrogram")   # the example images: a few rows
    save_spectrogram_examples(Path("plots/spectrograms"), table, spectrograms, cfg, sample_rate, cfg["n_examples"])
    features = read_npz_mapped(OUT / "features.npz", "features")
    print(f"featurize: {features.shape[0]} clips, {features.shape[1]} features, spectrogram {spectrograms.shape[1:]}")


if __name__ == "__main__":
    main()
