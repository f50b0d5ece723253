"""Probabilities that mean what they say: temperature scaling and calibration error.

A network trained with cross-entropy on a few thousand clips is overconfident on voices it has
not heard (and underconfident with mixup). Temperature scaling (Guo et al., 2017) divides the
log-probabilities by one number ``T`` fitted to minimise the negative log-likelihood of
out-of-fold predictions: the ranking, and so the label, never changes; only how sure it says
it is. The expected calibration error (ECE) is the gap between confidence and accuracy,
averaged over equal-width confidence bins weighted by their clips.

``predict`` may normalize a file with its speaker's other files (a group) or alone (a single
file: far less accurate, ``ua_file`` in ``metrics/cv.json``), so a temperature is fitted for
each way, on the matching out-of-fold predictions.
"""

import json
from pathlib import Path

import numpy as np

from ser.core.errors import DataError

T_BOUNDS = (0.05, 20.0)
CV_METRICS = Path("metrics/cv.json")


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of ``log(p) / T`` per row: calibrated probabilities, same ranking."""
    logits = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=-1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, labels) -> float:
    """Mean ``-log p(true class)``."""
    p = np.asarray(probabilities, np.float64)[np.arange(len(labels)), np.asarray(labels)]
    return float(-np.mean(np.log(np.clip(p, 1e-12, 1.0))))


def fit_temperature(probabilities: np.ndarray, labels) -> float:
    """The temperature minimising the NLL of ``labels`` under ``apply_temperature`` (scipy's
    bounded scalar search over log T, which is convex in practice)."""
    from scipy.optimize import minimize_scalar

    def loss(log_t):
        return negative_log_likelihood(apply_temperature(probabilities, np.exp(log_t)), labels)

    result = minimize_scalar(loss, bounds=np.log(T_BOUNDS), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


def expected_calibration_error(probabilities: np.ndarray, labels, bins: int = 15) -> float:
    """ECE of the top-1 confidence over ``bins`` equal-width bins of (0, 1]."""
    p = np.asarray(probabilities, np.float64)
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == np.asarray(labels)
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(confidence[mask].mean() - correct[mask].mean())
    return float(total / max(1, len(p)))


def cross_fitted(folds: list) -> list:
    """Each fold's probabilities scaled by a temperature fitted on the other folds only, so the
    fit never sees the clips it is judged on. ``folds``: a list of ``(probabilities, labels)``."""
    out = []
    for k, (p, _) in enumerate(folds):
        rest = [f for j, f in enumerate(folds) if j != k]
        t = fit_temperature(np.concatenate([q for q, _ in rest]), np.concatenate([y for _, y in rest]))
        out.append(apply_temperature(p, t))
    return out


def calibrate(folds: list, bins: int) -> dict:
    """Temperature and ECE from out-of-fold predictions: ``folds`` is a list of
    ``(probabilities, labels)``, one per fold. ``temperature`` is fitted on every fold's
    predictions (what the shipped model uses); ``ece_after`` and ``nll_after`` are cross-fitted
    (``cross_fitted``), so they are honest estimates, not the fit's own training score."""
    probs = np.concatenate([p for p, _ in folds])
    labels = np.concatenate([y for _, y in folds])
    calibrated = np.concatenate(cross_fitted(folds))
    return {"temperature": fit_temperature(probs, labels),
            "ece_before": expected_calibration_error(probs, labels, bins),
            "ece_after": expected_calibration_error(calibrated, labels, bins),
            "nll_before": negative_log_likelihood(probs, labels),
            "nll_after": negative_log_likelihood(calibrated, labels)}


def held_out_ece(results: list, labels, bins: int, temperatures: dict) -> dict:
    """Per held-out part (each corpus of leave-one-corpus-out), the ECE of its predictions as
    they are (``ece``; ``ece_file`` for clips normalized alone) and scaled by the shipped
    temperatures (``temperatures``: the cv stage's ``group`` and ``file`` ones): does a
    temperature learnt on unseen speakers of known corpora carry to an unseen corpus?"""
    out = {}
    for r in results:
        y = labels[r["rows"]]
        out[r["name"]] = {
            "ece": expected_calibration_error(r["probabilities"], y, bins),
            "ece_calibrated": expected_calibration_error(apply_temperature(r["probabilities"], temperatures["group"]),
                                                         y, bins),
            "ece_file": expected_calibration_error(r["probabilities_file"], y, bins),
            "ece_file_calibrated": expected_calibration_error(
                apply_temperature(r["probabilities_file"], temperatures["file"]), y, bins)}
    return out


def calibration_report(results: list, labels, bins: int) -> dict:
    """``metrics/cv.json``'s ``calibration``: for test clips normalized by speaker group
    (``group``) and alone (``file``), the temperature and the ECE/NLL before and after, from
    ``ser.model.training.evaluate_splits`` results."""
    return {"bins": bins,
            "group": calibrate([(r["probabilities"], labels[r["rows"]]) for r in results], bins),
            "file": calibrate([(r["probabilities_file"], labels[r["rows"]]) for r in results], bins)}


def cv_calibration(path: Path = CV_METRICS) -> dict:
    """The calibration the cv stage fitted (``calibration_report``, in ``metrics/cv.json``)."""
    try:
        return json.loads(Path(path).read_text())["calibration"]
    except (FileNotFoundError, KeyError, TypeError, json.JSONDecodeError):
        raise DataError(f"{path}: no calibration in it (run `dvc repro cv` first)") from None


# Which calibration a clip gets depends on how many clips of its voice normalized it:
# none but itself (a lone file), a few (a reference, or a small folder), or a whole speaker.
WAYS = ("file", "reference", "group")
THRESHOLD_GRID = np.round(np.arange(0.30, 0.951, 0.01), 2)


def way_for(clips: int, group_min_clips: int) -> str:
    """The calibration for a clip normalized with ``clips`` *other* clips of its voice (a
    reference's clips; a group's, a folder's, less the clip itself): ``file`` for none (a lone
    file), ``reference`` below ``group_min_clips``, ``group`` from there on."""
    if clips <= 0:
        return "file"
    return "reference" if clips < group_min_clips else "group"


def answered(probabilities: np.ndarray, labels, threshold: float) -> dict:
    """``coverage`` (share of clips answered with an emotion: top probability >= ``threshold``)
    and ``confident_accuracy`` (the accuracy of those answers; None when there are none)."""
    p = np.asarray(probabilities, np.float64)
    sure = p.max(axis=1) >= threshold
    correct = p.argmax(axis=1) == np.asarray(labels)
    return {"coverage": float(sure.mean()) if len(p) else 0.0,
            "confident_accuracy": float(correct[sure].mean()) if sure.any() else None}


def fit_threshold(probabilities: np.ndarray, labels, target: float) -> float:
    """The lowest ``uncertain`` threshold (of ``THRESHOLD_GRID``) at which the answered clips
    are at least ``target`` accurate: most answers that can be trusted that much. The highest
    of the grid when none reaches it (then nearly everything is ``uncertain``)."""
    for t in THRESHOLD_GRID:
        a = answered(probabilities, labels, t)
        if a["confident_accuracy"] is not None and a["confident_accuracy"] >= target:
            return float(t)
    return float(THRESHOLD_GRID[-1])


def correct_prior(probabilities: np.ndarray, class_prior) -> np.ndarray:
    """``p / class_prior`` renormalized per row: undoes a model's lean toward the classes it
    over-predicts on average (``class_prior``: its mean output distribution there)."""
    p = np.asarray(probabilities, np.float64) / np.asarray(class_prior, np.float64)
    return p / p.sum(axis=-1, keepdims=True)


def apply_way(probabilities: np.ndarray, way: dict) -> np.ndarray:
    """A way's calibration (``fit_way``): its temperature, then its class-prior correction
    when it has one."""
    p = apply_temperature(probabilities, way["temperature"])
    return correct_prior(p, way["class_prior"]) if way.get("class_prior") else p


def fit_way(parts: list, target: float, prior_correction: bool = False) -> dict:
    """Temperature, then (``prior_correction``) the class prior to divide out, then the
    threshold for ``target`` confident accuracy, from ``parts``: a list of ``(probabilities,
    labels)`` (e.g. every unseen corpus's lone-file predictions). The class prior is the mean
    calibrated output over the parts, each part (corpus) weighted equally: the lean that
    clips of an unknown setup share, not one corpus's."""
    probs = np.concatenate([p for p, _ in parts])
    labels = np.concatenate([y for _, y in parts])
    way = {"temperature": fit_temperature(probs, labels)}
    if prior_correction:
        prior = np.mean([apply_temperature(p, way["temperature"]).mean(axis=0) for p, _ in parts], axis=0)
        way["class_prior"] = (prior / prior.sum()).tolist()
    way["uncertain_below"] = fit_threshold(apply_way(probs, way), labels, target)
    return way
