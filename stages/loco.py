"""Stage loco: leave one corpus out, for every corpus: train on the others, test on it.

Besides each unseen corpus's scores it fits the calibration of clips normalized with few clips
of their voice (a lone file, a small reference) on these out-of-corpus predictions, where lone
files come from (metrics/calibration.json, read by the train stage), and draws the UA against
the reference size for CV and every unseen corpus (plots/reference_ua.csv).
"""

import json
from pathlib import Path

import numpy as np

from ser.core.config import load_params
from ser.core.errors import one_line_errors
from ser.core.files import write_csv, write_json
from ser.core.plots import save_score_bars
from ser.model.calibration import CV_METRICS, cv_calibration, held_out_ece
from ser.model.evaluation import (
    fit_ways,
    loco_reference_report,
    loco_report,
    reference_curve_rows,
)
from ser.model.training import corpus_splits, evaluate_splits
from ser.model.training_data import load_training_data

CALIBRATION = Path("metrics/calibration.json")


@one_line_errors
def main():
    import pandas as pd

    params = load_params()
    cal = params["calibration"]
    data, table = load_training_data(params)
    results = evaluate_splits(data, table, corpus_splits(table), params, log=lambda m: print(f"loco: {m}", flush=True))
    report = loco_report(results, data["labels"], params["labels"]["classes"])
    # The shipped temperatures (cv stage) on each unseen corpus.
    cv_cal = cv_calibration()
    temperatures = {way: c["temperature"] for way, c in cv_cal.items() if way in ("group", "file")}
    for corpus, ece in held_out_ece(results, data["labels"], cal["bins"], temperatures).items():
        report[corpus].update(ece)
    group = {"temperature": cv_cal["group"]["temperature"], "uncertain_below": cal["uncertain_below"]}
    n_classes = len(params["labels"]["classes"])
    by_reference = loco_reference_report(results, data["labels"], n_classes, cal["bins"], group,
                                         cal["group_min_clips"], cal["confident_accuracy"], cal["prior_correction"])
    for corpus, curve in by_reference.items():
        report[corpus]["by_reference"] = curve
    write_json("metrics/loco.json", report)
    # What predict uses for lone files and small references: fitted on every unseen corpus.
    write_json(CALIBRATION, {"group_min_clips": cal["group_min_clips"],
                             **fit_ways(results, data["labels"], "network", group, cal["group_min_clips"],
                                        cal["confident_accuracy"], cal["prior_correction"])})
    cv_by_reference = json.loads(Path(CV_METRICS).read_text())["by_reference"]
    write_csv("plots/reference_ua.csv", pd.DataFrame(reference_curve_rows(cv_by_reference, report)))
    save_score_bars("plots/loco_ua.png", {c: {"network": v["ua"], "eGeMAPS+SVM": v["baseline_ua"]}
                                          for c, v in report.items()}, "Leave one corpus out: UA on the held-out corpus")
    print(f"loco: mean UA {np.mean([v['ua'] for v in report.values()]):.3f} "
          f"(eGeMAPS+SVM {np.mean([v['baseline_ua'] for v in report.values()]):.3f}) over {len(report)} corpora; "
          f"mean ECE {np.mean([v['ece'] for v in report.values()]):.3f} -> "
          f"{np.mean([v['ece_calibrated'] for v in report.values()]):.3f} (each file alone "
          f"{np.mean([v['ece_file'] for v in report.values()]):.3f} -> "
          f"{np.mean([v['ece_file_calibrated'] for v in report.values()]):.3f}) with the cv stage's temperatures")
    for model in ("network", "linear"):
        sizes = next(iter(by_reference.values()))[model]
        print(f"loco: {model} mean UA by reference size: " + "  ".join(
            f"k={k} {np.mean([c[model][k]['ua'] for c in by_reference.values()]):.3f}" for k in sizes))


if __name__ == "__main__":
    main()
