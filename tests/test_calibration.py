"""Temperature scaling and the expected calibration error (ser.model.calibration)."""

import numpy as np
import pytest

from ser.model.calibration import (
    apply_temperature,
    calibrate,
    calibration_report,
    expected_calibration_error,
    fit_temperature,
    held_out_ece,
)


def overconfident(n=3000, classes=7, sharpen=3.0, seed=0):
    """Labels drawn from known probabilities, and those probabilities sharpened by ``sharpen``
    (an overconfident model whose right temperature is ``sharpen``)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (n, classes))
    true = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(classes, p=p) for p in true])
    sharp = np.exp(logits * sharpen)
    return sharp / sharp.sum(1, keepdims=True), labels, true


def test_temperature_is_a_root_of_the_probabilities_and_keeps_the_ranking():
    """Temperature T divides the logits: each probability becomes p ** (1/T), renormalised."""
    probs, _, _ = overconfident(50)
    for t in (0.5, 1.0, 4.0):
        scaled = apply_temperature(probs, t)
        root = probs ** (1 / t)
        np.testing.assert_allclose(scaled, root / root.sum(1, keepdims=True), rtol=1e-9, atol=1e-12)
        assert (scaled.argmax(1) == probs.argmax(1)).all()
    assert np.allclose(apply_temperature(probs, 1.0), probs, atol=1e-9)
    assert apply_temperature(probs, 4.0).max(1).mean() < probs.max(1).mean()   # T > 1 softens


def test_fit_recovers_the_sharpening_and_lowers_the_error():
    probs, labels, true = overconfident()
    t = fit_temperature(probs, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    assert np.abs(apply_temperature(probs, t) - true).mean() < 0.1 * np.abs(probs - true).mean() + 0.01
    before = expected_calibration_error(probs, labels)
    after = expected_calibration_error(apply_temperature(probs, t), labels)
    assert before > 0.15 and after < 0.05


def test_expected_calibration_error_by_hand():
    # Two clips at confidence 0.9 (one right), two at 0.6 (both right): |0.9-0.5|*2/4 + |0.6-1|*2/4
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 1, 0, 1])
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(0.2 + 0.2)
    assert expected_calibration_error(np.array([[1.0, 0.0]]), np.array([0])) == 0.0


def test_cross_fitted_report_per_way_and_per_held_out_part():
    probs, labels, _ = overconfident(2000)
    folds = np.array_split(np.arange(len(labels)), 4)
    results = [{"name": f"f{k}", "rows": rows, "probabilities": probs[rows], "probabilities_file": probs[rows] ** 0.5}
               for k, rows in enumerate(folds)]
    report = calibration_report(results, labels, bins=15)
    assert report["bins"] == 15 and set(report) == {"bins", "group", "file"}
    group = report["group"]
    assert group["temperature"] == pytest.approx(3.0, rel=0.15)
    assert group["ece_after"] < group["ece_before"] and group["nll_after"] < group["nll_before"]
    # the "file" predictions are a different (softer) model: their own temperature
    assert report["file"]["temperature"] < group["temperature"]
    held = held_out_ece(results, labels, 15, {"group": group["temperature"], "file": report["file"]["temperature"]})
    assert set(held) == {"f0", "f1", "f2", "f3"}
    assert all(set(v) == {"ece", "ece_calibrated", "ece_file", "ece_file_calibrated"} for v in held.values())
    assert all(v["ece_calibrated"] < v["ece"] and v["ece_file_calibrated"] < v["ece_file"] for v in held.values())
    # honest: one fold's score never uses a temperature fitted on it
    direct = calibrate([(probs[r], labels[r]) for r in folds], 15)
    assert direct == group


def test_the_cv_calibration_is_read_or_refused_in_one_line(tmp_path):
    from ser.core.errors import DataError
    from ser.model.calibration import cv_calibration

    (tmp_path / "cv.json").write_text('{"calibration": {"group": {"temperature": 0.8}}}')
    assert cv_calibration(tmp_path / "cv.json")["group"]["temperature"] == 0.8
    (tmp_path / "cv.json").write_text('{"ua": 1}')
    with pytest.raises(DataError, match=r"cv.json: no calibration in it \(run `dvc repro cv` first\)$"):
        cv_calibration(tmp_path / "cv.json")
