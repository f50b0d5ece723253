"""Classification metrics as reported in SER papers, computed with scikit-learn."""

import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, precision_recall_fscore_support


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
    """The ``metrics/cv.json`` document from ``ser.training.evaluate_splits`` over folds:
    mean +- std over folds of UA, WA and macro-F1 for the network and the baselines, and
    ``ua_file``: the network's UA when every test clip is normalised alone (a single file),
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
    scores; ``ua_file`` is the network's UA with every test clip normalised alone."""
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
