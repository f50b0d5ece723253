"""Stage loco: leave one corpus out, for every corpus: train on the others, test on it."""

import numpy as np

from ser.calibration import cv_calibration, held_out_ece
from ser.config import load_params
from ser.dataset import load_training_data
from ser.errors import one_line_errors
from ser.evaluation import loco_report
from ser.io import write_json
from ser.plots import save_score_bars
from ser.training import corpus_splits, evaluate_splits


@one_line_errors
def main():
    params = load_params()
    data, table = load_training_data(params)
    results = evaluate_splits(data, table, corpus_splits(table), params, log=lambda m: print(f"loco: {m}", flush=True))
    report = loco_report(results, data["labels"], params["labels"]["classes"])
    # The shipped temperatures (cv stage) on each unseen corpus.
    temperatures = {way: c["temperature"] for way, c in cv_calibration().items() if way in ("group", "file")}
    for corpus, ece in held_out_ece(results, data["labels"], params["calibration"]["bins"], temperatures).items():
        report[corpus].update(ece)
    write_json("metrics/loco.json", report)
    save_score_bars("plots/loco_ua.png", {c: {"network": v["ua"], "eGeMAPS+SVM": v["baseline_ua"]}
                                          for c, v in report.items()}, "Leave one corpus out: UA on the held-out corpus")
    print(f"loco: mean UA {np.mean([v['ua'] for v in report.values()]):.3f} "
          f"(eGeMAPS+SVM {np.mean([v['baseline_ua'] for v in report.values()]):.3f}) over {len(report)} corpora; "
          f"mean ECE {np.mean([v['ece'] for v in report.values()]):.3f} -> "
          f"{np.mean([v['ece_calibrated'] for v in report.values()]):.3f} (each file alone "
          f"{np.mean([v['ece_file'] for v in report.values()]):.3f} -> "
          f"{np.mean([v['ece_file_calibrated'] for v in report.values()]):.3f}) with the cv stage's temperatures")


if __name__ == "__main__":
    main()
