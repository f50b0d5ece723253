"""Stage featurize: feature vectors and log-mel images per split, plus example spectrogram PNGs."""

from pathlib import Path

from ser.audio import Pack
from ser.config import load_params
from ser.dataset import SPLITS, extract_clips, save_split
from ser.errors import one_line_errors
from ser.io import read_csv
from ser.plots import save_spectrogram_examples

OUT = Path("data/features")


@one_line_errors
def main():
    params = load_params()
    cfg, sample_rate, classes = params["featurize"], params["audio"]["sample_rate"], params["labels"]["classes"]
    table = read_csv("data/augmented/clips.csv")
    pack = Pack("data/augmented/audio.npz")
    for split in SPLITS:
        part = table[table.split == split]
        features, spectrograms = extract_clips([pack.pcm(i) for i in part.index], sample_rate, cfg,
                                               desc=f"featurize:{split}")
        save_split(OUT, split, part, features, spectrograms, classes)
        if split == "train":
            save_spectrogram_examples(Path("plots/spectrograms"), part.reset_index(drop=True), spectrograms,
                                      cfg, sample_rate, cfg["n_examples"])
        print(f"featurize: {split}: {features.shape[0]} clips, {features.shape[1]} features, "
              f"spectrogram {spectrograms.shape[1:]}")


if __name__ == "__main__":
    main()
