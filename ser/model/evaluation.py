"""Classification metrics as reported in SER papers, computed with scikit-learn."""

import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_recall_fscore_support,
)


def summary(y_true, y_pred, n_classes: int) -> dict:
    """Accuracy, UA (balanced accuracy = mean per-class recall), WA and macro-F1.

    WA (weighted accuracy) is per-class recall weighted by class frequency, which equals
    overall accuracy; it is reported under its SER name so tables line up with papers.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn warns when a slice lacks some classes
        return _summary(y_true, y_pred, n_classes)


def _summary(y_true, y_pred, n_classes: int) -> dict:
    labels = np.arange(n_classes)
    present = np.unique(y_true)
    _, recall, _, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    wa = float(np.sum(recall * support) / max(1, support.sum()))
    return {
        "clips": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "ua": float(balanced_accuracy_score(y_true, y_pred)) if len(present) else 0.0,
        "wa": wa,
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
    }


def report(y_true, y_pred, classes, groups=None) -> dict:
    """Overall summary, per-class precision/recall/F1/support and, if ``groups`` (e.g. corpus)
    is given, a summary per group."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    out = summary(y_true, y_pred, len(classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(len(classes)), zero_division=0)
    out["per_class"] = {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                        for name, p, r, f, s in zip(classes, precision, recall, f1, support)}
    if groups is not None:
        groups = np.asarray(groups)
        out["per_corpus"] = {g: summary(y_true[groups == g], y_pred[groups == g], len(classes))
                             for g in sorted(set(groups))}
    return out


def confusion_table(y_true, y_pred, classes) -> pd.DataFrame:
    """Rows of (actual, predicted) class names: the input of DVC's confusion-matrix plot."""
    names = np.asarray(classes)
    return pd.DataFrame({"actual": names[np.asarray(y_true)], "predicted": names[np.asarray(y_pred)]})


def mean_std(values) -> dict:
    """``{"mean", "std"}`` over folds (population std; one value gives std 0)."""
    values = np.asarray(values, dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std())}


def cv_report(results: list, labels, table, classes) -> dict:
    """The ``metrics/cv.json`` document from ``ser.model.training.evaluate_splits`` over folds:
    mean +- std over folds of UA, WA and macro-F1 for the network and the baselines, and
    ``ua_file``: the network's UA when every test clip is normalized alone (a single file),
    pooled out-of-fold scores per corpus, and every fold's own numbers."""
    n = len(classes)
    per_fold = []
    for r in results:
        truth = labels[r["rows"]]
        net = summary(truth, r["probabilities"].argmax(1), n)
        per_fold.append({"fold": r["name"], **net,
                         "ua_file": summary(truth, r["probabilities_file"].argmax(1), n)["ua"],
                         "speakers": int(table.speaker.iloc[r["rows"]].nunique()),
                         "baseline_ua": summary(truth, r["baseline"], n)["ua"],
                         "baseline_normalized_ua": summary(truth, r["baseline_normalized"], n)["ua"]})
    rows = np.concatenate([r["rows"] for r in results])
    predicted = np.concatenate([r["probabilities"].argmax(1) for r in results])
    baseline = np.concatenate([r["baseline"] for r in results])
    corpus = table.corpus.to_numpy()[rows]
    per_corpus = {}
    for c in sorted(set(corpus)):
        mask = corpus == c
        per_corpus[c] = {**summary(labels[rows][mask], predicted[mask], n),
                         "baseline_ua": summary(labels[rows][mask], baseline[mask], n)["ua"]}
    out = {"folds": len(results)}
    for key in ("ua", "wa", "macro_f1", "ua_file", "baseline_ua", "baseline_normalized_ua"):
        out[key] = mean_std([f[key] for f in per_fold])
    out["pooled"] = summary(labels[rows], predicted, n)
    out["per_corpus"] = per_corpus
    out["per_fold"] = per_fold
    return out


def loco_report(results: list, labels, classes) -> dict:
    """The ``metrics/loco.json`` document: per held-out corpus, the network's and the baselines'
    scores; ``ua_file`` is the network's UA with every test clip normalized alone."""
    n = len(classes)
    out = {}
    for r in results:
        truth = labels[r["rows"]]
        net = summary(truth, r["probabilities"].argmax(1), n)
        out[r["name"]] = {"ua": net["ua"], "wa": net["wa"], "macro_f1": net["macro_f1"],
                          "ua_file": summary(truth, r["probabilities_file"].argmax(1), n)["ua"],
                          "baseline_ua": summary(truth, r["baseline"], n)["ua"],
                          "baseline_normalized_ua": summary(truth, r["baseline_normalized"], n)["ua"],
                          "clips": net["clips"]}
    return out


MODELS = ("network", "linear")   # the shipped network and the linear probe (ser.model.training.linear_probe)


def _mean_or_none(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _scores(draws: list, truth, n_classes: int) -> dict:
    """UA, WA and macro-F1 averaged over the draws (arrays of probabilities) of one split, and
    ``ua_draws_std``: how much the UA moves from one random reference to another."""
    scores = [summary(truth, p.argmax(1), n_classes) for p in draws]
    out = {key: float(np.mean([s[key] for s in scores])) for key in ("ua", "wa", "macro_f1")}
    out["ua_draws_std"] = float(np.std([s["ua"] for s in scores]))
    return out


def reference_size_way(size: str, group_min_clips: int) -> str:
    """The calibration (``ser.model.calibration.way_for``) of a ``by_reference`` size: ``"0"`` a lone
    file, ``"all"`` the whole speaker, else a reference of that many clips."""
    from ser.model.calibration import way_for

    return "group" if size == "all" else way_for(int(size), group_min_clips)


def cv_reference_report(results: list, labels, n_classes: int, bins: int, uncertain_below: float) -> dict:
    """``metrics/cv.json``'s ``by_reference``: per model and reference size, UA, WA and
    macro-F1 (mean +- std over folds, each the mean over its draws; ``ua_draws_std``: the std
    over draws within a fold, averaged over folds), and the ECE, coverage and
    accuracy of the confident answers (``uncertain_below``) after temperature scaling fitted on
    the other folds at the same size (``ser.model.calibration.cross_fitted``), mean over draws."""
    from ser.model.calibration import answered, cross_fitted, expected_calibration_error

    out = {}
    for model in MODELS:
        out[model] = {}
        for size in results[0]["by_reference"]:
            per_fold = [_scores(r["by_reference"][size][model], labels[r["rows"]], n_classes) for r in results]
            entry = {key: mean_std([f[key] for f in per_fold]) for key in ("ua", "wa", "macro_f1")}
            entry["ua_draws_std"] = float(np.mean([f["ua_draws_std"] for f in per_fold]))   # within a fold
            truth = np.concatenate([labels[r["rows"]] for r in results])
            ece, coverage, accuracy = [], [], []
            for draw in range(len(results[0]["by_reference"][size][model])):
                folds = [(r["by_reference"][size][model][draw], labels[r["rows"]]) for r in results]
                calibrated = np.concatenate(cross_fitted(folds))
                ece.append(expected_calibration_error(calibrated, truth, bins))
                a = answered(calibrated, truth, uncertain_below)
                coverage.append(a["coverage"])
                accuracy.append(a["confident_accuracy"])
            entry.update(ece=float(np.mean(ece)), coverage=float(np.mean(coverage)),
                         confident_accuracy=_mean_or_none(accuracy))
            out[model][size] = entry
    return out


def fit_ways(results: list, labels, model: str, group: dict, group_min_clips: int, target: float,
             prior_correction: bool = False) -> dict:
    """``{way: {"temperature", "uncertain_below"}}`` for ``model``'s predictions in ``results``
    (unseen corpora): ``file`` from the lone files (size ``"0"``), ``reference`` from every
    reference size below ``group_min_clips`` (all draws), each with the threshold that gives
    ``target`` confident accuracy (``ser.model.calibration.fit_way``, with the class-prior
    correction when ``prior_correction``); ``group`` as given (the cv stage's temperature and
    ``calibration.uncertain_below``)."""
    from ser.model.calibration import fit_way

    ways = {"group": dict(group)}
    for way in ("file", "reference"):
        # one part per corpus (its draws and sizes together): the prior weights corpora equally
        parts = [(np.concatenate(ps), np.concatenate([labels[r["rows"]]] * len(ps))) for r in results
                 for ps in [[p for size, v in r["by_reference"].items()
                             if reference_size_way(size, group_min_clips) == way for p in v[model]]] if ps]
        if parts:
            ways[way] = fit_way(parts, target, prior_correction)
    return ways


def loco_reference_report(results: list, labels, n_classes: int, bins: int, group: dict, group_min_clips: int,
                          target: float, prior_correction: bool = False) -> dict:
    """Per held-out corpus, ``by_reference``: per model and reference size, UA, WA, macro-F1
    (mean over draws), and the ECE, coverage and confident-answer accuracy with the
    calibration of the size's way (``fit_ways``) fitted on the *other* corpora only: what a
    corpus no calibration has seen gets. The scores are those of the calibrated answers: a
    class-prior correction (``prior_correction``) can change the label, a temperature cannot."""
    from ser.model.calibration import answered, apply_way, expected_calibration_error

    out = {}
    for k, r in enumerate(results):
        others = [q for j, q in enumerate(results) if j != k]
        truth = labels[r["rows"]]
        report = {}
        for model in MODELS:
            ways = (fit_ways(others, labels, model, group, group_min_clips, target, prior_correction) if others
                    else {"group": group})
            report[model] = {}
            for size, v in r["by_reference"].items():
                way = ways.get(reference_size_way(size, group_min_clips), group)
                calibrated = [apply_way(p, way) for p in v[model]]
                answers = [answered(p, truth, way["uncertain_below"]) for p in calibrated]
                report[model][size] = {
                    **_scores(calibrated, truth, n_classes),
                    "ece": float(np.mean([expected_calibration_error(p, truth, bins) for p in calibrated])),
                    "coverage": float(np.mean([a["coverage"] for a in answers])),
                    "confident_accuracy": _mean_or_none([a["confident_accuracy"] for a in answers])}
        out[r["name"]] = report
    return out


def reference_curve_rows(cv_by_reference: dict, loco: dict) -> list[dict]:
    """``plots/reference_ua.csv``: one row per numeric reference size, the UA of the network
    (and the linear probe) in CV, on average over the unseen corpora, and on each one."""
    sizes = [s for s in cv_by_reference["network"] if s.isdigit()]
    rows = []
    for size in sizes:
        row = {"reference_clips": int(size)}
        for model, suffix in (("network", ""), ("linear", "_linear")):
            row[f"cv{suffix}"] = cv_by_reference[model][size]["ua"]["mean"]
            row[f"loco_mean{suffix}"] = float(np.mean([c["by_reference"][model][size]["ua"] for c in loco.values()]))
        for corpus, c in loco.items():
            row[f"loco_{corpus}"] = c["by_reference"]["network"][size]["ua"]
        rows.append(row)
    return rows
