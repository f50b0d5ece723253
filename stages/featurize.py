"""Stage featurize: feature vector and log-mel image of every clip, plus example spectrogram PNGs."""

from pathlib import Path

from ser.audio.pack import Pack
from ser.core.config import load_params
from ser.core.errors import one_line_errors
from ser.core.files import read_csv
from ser.core.plots import save_spectrogram_examples
from ser.features.handcrafted import extract_clips, save_features

OUT = Path("data/features")


@one_line_errors
def main():
    params = load_params()
    cfg, sample_rate, classes = params["featurize"], params["audio"]["sample_rate"], params["labels"]["classes"]
    table = read_csv("data/augmented/clips.csv")
    pack = Pack("data/augmented/audio.npz")
    features, spectrograms = extract_clips([pack.pcm(i) for i in range(len(table))], sample_rate, cfg)
    save_features(OUT, table, features, spectrograms, classes)
    save_spectrogram_examples(Path("plots/spectrograms"), table, spectrograms, cfg, sample_rate, cfg["n_examples"])
    print(f"featurize: {features.shape[0]} clips, {features.shape[1]} features, spectrogram {spectrograms.shape[1:]}")


if __name__ == "__main__":
    main()
