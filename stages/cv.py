"""Stage cv: speaker-grouped k-fold cross-validation of the network and the eGeMAPS + SVM baseline.

One stage loops the folds (rather than a ``foreach`` stage per fold): the features are
computed once with the fold as a column, each fold is seconds of bookkeeping around one
training run, and mean +- std needs every fold's result in one place anyway.
"""

import numpy as np

from ser.core.config import load_params
from ser.core.errors import one_line_errors
from ser.core.files import write_csv, write_json
from ser.core.plots import save_score_bars
from ser.model.calibration import calibration_report
from ser.model.evaluation import confusion_table, cv_reference_report, cv_report
from ser.model.training import evaluate_splits, fold_splits
from ser.model.training_data import load_training_data


@one_line_errors
def main():
    params = load_params()
    classes = params["labels"]["classes"]
    data, table = load_training_data(params)
    results = evaluate_splits(data, table, fold_splits(table), params, log=lambda m: print(f"cv: {m}", flush=True))
    report = cv_report(results, data["labels"], table, classes)
    report["protocol"] = {"folds": params["prepare"]["split"], "augment_before_split": params["augment"]["before_split"]}
    # The temperatures the shipped model's bundle uses (stages/train.py), from out-of-fold predictions.
    report["calibration"] = calibration_report(results, data["labels"], params["calibration"]["bins"])
    report["by_reference"] = cv_reference_report(results, data["labels"], len(classes), params["calibration"]["bins"],
                                                 params["calibration"]["uncertain_below"])
    write_json("metrics/cv.json", report)
    rows = np.concatenate([r["rows"] for r in results])
    predicted = np.concatenate([r["probabilities"].argmax(1) for r in results])
    write_csv("plots/cv_confusion.csv", confusion_table(data["labels"][rows], predicted, classes))
    bars = {f["fold"]: {"network": f["ua"], "eGeMAPS+SVM": f["baseline_ua"]} for f in report["per_fold"]}
    bars.update({c: {"network": v["ua"], "eGeMAPS+SVM": v["baseline_ua"]} for c, v in report["per_corpus"].items()})
    save_score_bars("plots/cv_ua.png", bars, f"{report['folds']}-fold CV ({params['prepare']['split']} folds): "
                    "UA per fold and per corpus")
    print(f"cv: UA {report['ua']['mean']:.3f} ± {report['ua']['std']:.3f}  WA {report['wa']['mean']:.3f}  "
          f"macro-F1 {report['macro_f1']['mean']:.3f}  (eGeMAPS+SVM {report['baseline_ua']['mean']:.3f} ± "
          f"{report['baseline_ua']['std']:.3f}; speaker-normalized SVM {report['baseline_normalized_ua']['mean']:.3f})")
    for model, curve in report["by_reference"].items():
        print(f"cv: {model} UA by reference size: "
              + "  ".join(f"k={k} {v['ua']['mean']:.3f}" for k, v in curve.items()))
    for way, c in ((w, report["calibration"][w]) for w in ("group", "file")):
        print(f"cv: calibration ({way}): temperature {c['temperature']:.2f}, ECE {c['ece_before']:.3f} -> "
              f"{c['ece_after']:.3f} (each fold scaled by the other folds' temperature)")


if __name__ == "__main__":
    main()
