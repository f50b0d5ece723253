"""Stage baseline: eGeMAPS functionals + SVM on the same splits as the network."""

from functools import partial

import numpy as np

from ser import audio
from ser.audio import Pack
from ser.baseline import fit_svm, functionals
from ser.config import load_params
from ser.errors import DataError, one_line_errors
from ser.evaluation import report
from ser.io import read_csv, write_json
from ser.parallel import pmap


def _functionals(pcm, sample_rate, feature_set):
    return functionals(audio.to_float(pcm), sample_rate, feature_set)


@one_line_errors
def main():
    params = load_params()
    cfg, sample_rate, classes = params["baseline"], params["audio"]["sample_rate"], params["labels"]["classes"]
    table = read_csv("data/augmented/clips.csv")
    pack = Pack("data/augmented/audio.npz")
    # The SVM needs train and test only; augmented copies only if baseline.use_augmented.
    use = (table.split == "test") | ((table.split == "train") & ((table.augmentation == "none") | cfg["use_augmented"]))
    table = table[use]
    if not (table.split == "train").any() or not (table.split == "test").any():
        raise DataError("data/augmented/clips.csv: the baseline needs clips in both train and test")
    work = partial(_functionals, sample_rate=sample_rate, feature_set=cfg["feature_set"])
    features = np.stack(pmap(work, [pack.pcm(i) for i in table.index], desc="egemaps", chunksize=8))
    labels = np.array([classes.index(e) for e in table.emotion])
    train, test = (table.split == "train").to_numpy(), (table.split == "test").to_numpy()
    model = fit_svm(features[train], labels[train], cfg["svm_c"], params["seed"])
    predicted = model.predict(features[test])
    result = report(labels[test], predicted, classes, groups=table.corpus.to_numpy()[test])
    write_json("metrics/baseline.json", {"model": f"{cfg['feature_set']} functionals + RBF SVM (C={cfg['svm_c']})",
                                         "train_clips": int(train.sum()), "test": result})
    print(f"baseline: test UA {result['ua']:.3f}  WA {result['wa']:.3f}  macro-F1 {result['macro_f1']:.3f}")


if __name__ == "__main__":
    main()
