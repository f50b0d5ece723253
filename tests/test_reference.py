"""Know the voice: a few other clips of a speaker normalize a clip (ser.model.normalize references,
``predict --reference``, the by_reference curves and the small-group calibration)."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ser.app.predict import Predictor
from ser.model import normalize
from ser.model.calibration import answered, fit_threshold, way_for
from ser.model.evaluation import (
    cv_reference_report,
    fit_ways,
    loco_reference_report,
    reference_curve_rows,
)
from ser.model.training import small_group_arrays

from .conftest import checkout_env, write_speech, write_tone


def _clips(n=30, dims=4, groups=3, seed=0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), n // groups).astype(str)
    x = rng.normal(size=(n, dims)) + 5 * g.astype(int)[:, None]
    return x, g


def test_references_are_other_clips_of_the_same_group_and_seeded():
    x, groups = _clips()
    refs = normalize.draw_references(groups, 3, np.random.default_rng(1))
    assert refs.shape == (30, 3)
    for i, row in enumerate(refs):
        assert i not in row and len(set(row)) == 3 and set(groups[row]) == {groups[i]}
    assert np.array_equal(refs, normalize.draw_references(groups, 3, np.random.default_rng(1)))
    assert not np.array_equal(refs, normalize.draw_references(groups, 3, np.random.default_rng(2)))
    # A group smaller than k: its other clips, cycled; a group of one: itself, nothing else there.
    small = normalize.draw_references(np.array(["a", "a", "b"]), 3, np.random.default_rng(0))
    assert set(small[0]) == {1} and set(small[1]) == {0} and set(small[2]) == {2}
    assert normalize.draw_references(groups, 5, np.random.default_rng(0), rows=[4, 7]).shape == (2, 5)


def test_a_clip_is_standardized_with_its_references_statistics():
    x, groups = _clips()
    prior = {"mean": [0.0] * 4, "var": [1.0] * 4}
    refs = normalize.draw_references(groups, 4, np.random.default_rng(0))
    z = normalize.normalize_with_references(x, x, refs, prior, prior_clips=0, var_prior_clips=0)
    ref = x[refs[7]]
    assert np.allclose(z[7], (x[7] - ref.mean(0)) / np.sqrt(ref.var(0) + 1e-6), atol=1e-5)
    # Shrinkage: mean with prior_clips, variance with var_prior_clips, as a group of k clips.
    z = normalize.normalize_with_references(x, x, refs, prior, prior_clips=2, var_prior_clips=1e9)
    mean = 4 / 6 * ref.mean(0)
    assert np.allclose(z[7], (x[7] - mean) / np.sqrt(1.0 + 1e-6), atol=1e-4)
    # No reference: the prior alone.
    assert np.allclose(normalize.normalize_with_references(x, x, np.empty((30, 0)), prior, 2), x, atol=1e-5)
    # The same numbers as a group of those clips.
    mean, var, n, w = normalize.reference_statistics(ref, prior, 2, 10)
    group = normalize.group_statistics(ref, ["r"] * 4, prior, 2, 10)["r"]
    assert n == 4 and w == pytest.approx(4 / 6) and np.allclose(mean, group[0]) and np.allclose(var, group[1])
    assert np.allclose(var, 4 / 14 * ref.var(0) + 10 / 14)


def test_spectrogram_references_use_their_valid_frames():
    rng = np.random.default_rng(0)
    images = rng.uniform(0.1, 1, size=(6, 3, 8))
    images[:, :, 6:] = 0.0   # padding
    prior = {"mean": [0.0] * 3, "var": [1.0] * 3}
    refs = np.array([[1, 2]] * 6)
    z = normalize.normalize_with_references(images, images, refs, prior, 0, 0)
    frames = np.concatenate([images[1][:, :6], images[2][:, :6]], axis=1)
    assert np.allclose(z[0], (images[0] - frames.mean(1)[:, None]) / np.sqrt(frames.var(1)[:, None] + 1e-6), atol=1e-5)


def test_small_groups_renormalize_a_share_of_the_clips_each_epoch():
    x, groups = _clips(60, groups=3)
    prior = {"mean": [0.0] * 4, "var": [1.0] * 4}
    whole, _ = normalize.normalize(x, groups, "speaker", prior, 10)
    norm = {"small_groups": 0.5, "prior_clips": 10, "var_prior_clips": 10}
    arrays = small_group_arrays({"features": x}, {"features": whole}, groups, norm, {"features": prior}, seed=3)
    first, again, second = arrays(0)["features"], arrays(0)["features"], arrays(1)["features"]
    assert np.array_equal(first, again) and not np.array_equal(first, second)
    changed = ~np.isclose(first, whole).all(axis=1)
    assert 0.25 < changed.mean() < 0.75   # about half the clips (k=0 and k=10 also differ from the whole group)
    off = {**norm, "small_groups": 0.0}
    assert np.array_equal(small_group_arrays({"features": x}, {"features": whole}, groups, off,
                                             {"features": prior}, 3)(0)["features"], whole)


def test_ways_and_thresholds():
    assert [way_for(k, 10) for k in (0, 1, 3, 9, 10, 50)] == ["file", "reference", "reference", "reference",
                                                              "group", "group"]
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.55, 0.45]])
    labels = np.array([0, 0, 1, 1])
    assert answered(probs, labels, 0.7) == {"coverage": 0.5, "confident_accuracy": 1.0}
    assert answered(probs, labels, 0.95) == {"coverage": 0.0, "confident_accuracy": None}
    assert fit_threshold(probs, labels, 0.9) == pytest.approx(0.61)   # the lowest that leaves out both wrong ones
    assert fit_threshold(probs, labels, 0.5) == pytest.approx(0.30)


def _results(n_splits=3, clips=40, classes=3, seed=0):
    """evaluate_splits-shaped results: the right class more likely the larger the reference."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n_splits * clips)
    out = []
    for s in range(n_splits):
        rows = np.arange(s * clips, (s + 1) * clips)
        by_reference = {}
        for size, strength, draws in (("0", 0.5, 1), ("1", 1.0, 2), ("3", 2.0, 2), ("all", 3.0, 1)):
            def probs():
                logits = rng.normal(size=(clips, classes))
                logits[np.arange(clips), labels[rows]] += strength
                p = np.exp(logits)
                return p / p.sum(1, keepdims=True)
            by_reference[size] = {m: [probs() for _ in range(draws)] for m in ("network", "linear")}
        out.append({"name": f"corpus{s}", "rows": rows, "by_reference": by_reference})
    return out, labels


def test_reference_reports_cover_every_size_and_model():
    results, labels = _results()
    cv = cv_reference_report(results, labels, 3, bins=10, uncertain_below=0.5)
    assert set(cv) == {"network", "linear"} and list(cv["network"]) == ["0", "1", "3", "all"]
    ua = [cv["network"][k]["ua"]["mean"] for k in ("0", "1", "3", "all")]
    assert ua == sorted(ua)   # more of the voice, better answers (by construction here)
    for entry in cv["linear"].values():
        assert {"ua", "wa", "macro_f1", "ece", "coverage", "confident_accuracy"} <= set(entry)
        assert 0 <= entry["coverage"] <= 1
    loco = loco_reference_report(results, labels, 3, 10, {"temperature": 1.0, "uncertain_below": 0.5}, 10, 0.7)
    assert set(loco) == {"corpus0", "corpus1", "corpus2"}
    assert set(loco["corpus0"]["network"]) == {"0", "1", "3", "all"}
    rows = reference_curve_rows(cv, {c: {"by_reference": v} for c, v in loco.items()})
    assert [r["reference_clips"] for r in rows] == [0, 1, 3]
    assert {"cv", "cv_linear", "loco_mean", "loco_mean_linear", "loco_corpus1"} <= set(rows[0])


def test_lone_file_calibration_is_fitted_on_the_other_corpora_only():
    results, labels = _results()
    group = {"temperature": 0.8, "uncertain_below": 0.5}
    ways = fit_ways(results, labels, "network", group, 10, 0.7)
    assert ways["group"] == group and set(ways) == {"file", "reference", "group"}
    assert 0.3 <= ways["file"]["uncertain_below"] <= 0.95 and ways["file"]["temperature"] > 0
    # Held-out corpus 0 is judged with the calibration fitted on corpora 1 and 2.
    without = fit_ways(results[1:], labels, "network", group, 10, 0.7)
    from ser.model.calibration import answered as answered_at
    from ser.model.calibration import apply_temperature

    loco = loco_reference_report(results, labels, 3, 10, group, 10, 0.7)
    truth = labels[results[0]["rows"]]
    p = apply_temperature(results[0]["by_reference"]["0"]["network"][0], without["file"]["temperature"])
    assert loco["corpus0"]["network"]["0"]["coverage"] == pytest.approx(
        answered_at(p, truth, without["file"]["uncertain_below"])["coverage"])


# The command line: predict --reference.

def _voice(folder, n, first=0):
    return [write_speech(folder / f"clip{i}.wav", index=(first + i) % 5, seconds=1.5) for i in range(n)]


def _predict(*args):
    return subprocess.run([sys.executable, "-m", "ser", "predict", *map(str, args)], capture_output=True, text=True,
                          env=checkout_env())


def test_predict_with_a_reference(tiny_model, tmp_path):
    refs = _voice(tmp_path / "me", 3)
    targets = _voice(tmp_path / "new", 2, first=3)
    run = _predict(targets[0], "--reference", tmp_path / "me", "--model", tiny_model, "--format", "json", "-q")
    assert run.returncode == 0, run.stderr
    [row] = json.loads(run.stdout)
    assert row["normalization"].startswith("reference: 3 clips, ") and "s of speech, 23% own statistics" in \
        row["normalization"]
    assert row["voice_clips"] == 3 and "answered alone" not in run.stderr
    # A target's answer does not depend on the other targets: they never join the reference.
    both = _predict(*targets, "--reference", *refs, "--model", tiny_model, "--format", "json", "-q")
    assert json.loads(both.stdout)[0]["probabilities"] == pytest.approx(row["probabilities"], abs=1e-6)
    # Without a reference, a lone file says so, in plain words, on stderr.
    alone = _predict(targets[0], "--model", tiny_model, "--format", "csv", "-q")
    assert alone.returncode == 0 and "answered alone: one clip of an unknown voice is the least reliable" in alone.stderr
    assert "voice_clips" in alone.stdout.splitlines()[0] and alone.stdout.splitlines()[1].split(",")[-2] == "0"


@pytest.mark.slow
def test_bad_references_are_one_line_errors(tiny_model, tmp_path):
    target = write_speech(tmp_path / "target.wav", index=0, seconds=1.5)
    good = write_speech(tmp_path / "good.wav", index=1, seconds=1.5)
    (tmp_path / "copy.wav").write_bytes(target.read_bytes())
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.wav").write_text("not audio at all")
    write_tone(tmp_path / "tone.wav", seconds=2.0)
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "readme.txt").write_text("x")
    cases = [
        (["--reference", tmp_path / "empty.wav"], f"--reference {tmp_path / 'empty.wav'}: "),
        (["--reference", tmp_path / "notes.wav"], f"--reference {tmp_path / 'notes.wav'}: "),
        (["--reference", good, tmp_path / "tone.wav"], f"--reference {tmp_path / 'tone.wav'}: no speech in it"),
        (["--reference", tmp_path / "nothing"], f"--reference {tmp_path / 'nothing'}: folder has no audio files"),
        (["--reference", tmp_path / "missing.wav"], f"--reference {tmp_path / 'missing.wav'}: no such file"),
        (["--reference", target], f"--reference {target}: also given as a file to label"),
        (["--reference", tmp_path / "copy.wav"], f"--reference {tmp_path / 'copy.wav'}: the same audio as the file "
                                                 f"to label {target}"),
        (["--reference", good, good], f"--reference {good}: the same audio as the reference {good}"),
        (["--reference", good, "--speaker", "all"], "--reference and --speaker: choose one"),
    ]
    for extra, message in cases:
        run = _predict(target, *extra, "--model", tiny_model, "-q")
        err = [line for line in run.stderr.splitlines() if line.startswith("error:")]
        assert run.returncode == 2 and len(err) == 1 and err[0].startswith(f"error: {message}"), (extra, run.stderr)
        assert "Traceback" not in run.stderr and run.stdout == ""


def test_analyse_with_a_reference_in_process(tiny_model, tmp_path):
    predictor = Predictor(tiny_model)
    reference = predictor.reference(_voice(tmp_path / "me", 4), progress=False)
    assert reference.clips == 4 and reference.speech_s > 0
    [result] = predictor.analyse([write_speech(tmp_path / "t.wav", index=2, seconds=1.5)], progress=False,
                                 reference=reference)
    assert result.voice_clips == 4 and result.normalization.startswith("reference: 4 clips")
    assert result.uncertain_below == predictor.bundle.calibration["reference"]["uncertain_below"]


def test_the_reference_curve_is_a_dvc_plot(tmp_path):
    """dvc.yaml declares plots/reference_ua.csv with a linear template; the loco stage writes it."""
    import yaml

    from .conftest import ROOT

    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    [entry] = [p for p in plots if isinstance(p, dict) and any("reference" in k for k in p)]
    spec = next(iter(entry.values()))
    assert spec["template"] == "linear" and spec["x"] == "reference_clips"
    assert "plots/reference_ua.csv" in spec["y"]
    csv = ROOT / "plots" / "reference_ua.csv"
    frame = pd.read_csv(csv)   # committed with the metrics
    assert {"reference_clips", "cv", "loco_mean"} <= set(frame.columns) and list(frame.reference_clips)[0] == 0


def test_the_class_prior_correction_undoes_a_shared_lean():
    """calibration.prior_correction: a model that over-predicts a class on unseen corpora gets
    that lean divided out (fitted on the corpora's mean output, each corpus weighing the same)."""
    from ser.model.calibration import apply_way, correct_prior, fit_way

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3))
    logits[np.arange(300), labels] += 1.5
    logits[:, 0] += 1.5                                     # leans to class 0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    parts = [(probs[:150], labels[:150]), (probs[150:], labels[150:])]
    plain, corrected = fit_way(parts, 0.7), fit_way(parts, 0.7, prior_correction=True)
    assert "class_prior" not in plain and corrected["class_prior"][0] > 0.5
    share_0 = lambda way: (apply_way(probs, way).argmax(1) == 0).mean()   # noqa: E731
    assert share_0(plain) > 0.6 and share_0(corrected) < 0.45
    ua = lambda way: np.mean([(apply_way(probs, way).argmax(1) == labels)[labels == c].mean()  # noqa: E731
                              for c in range(3)])
    assert ua(corrected) > ua(plain) + 0.05
    assert np.allclose(correct_prior(np.full((2, 3), 1 / 3), [0.5, 0.25, 0.25]), [[0.2, 0.4, 0.4]] * 2)


def test_a_linear_bundle_predicts_the_same_on_both_backends(tmp_path):
    """train.model: linear ships like the network: model.keras, model.onnx and a bundle that
    predict checks and runs with either backend."""
    from .conftest import save_tiny_model

    save_tiny_model(tmp_path / "linear", model="linear")
    files = _voice(tmp_path / "v", 3)
    onnx = Predictor(tmp_path / "linear", backend="onnx").analyse(files, progress=False)
    keras = Predictor(tmp_path / "linear", backend="keras").analyse(files, progress=False)
    assert Predictor(tmp_path / "linear").bundle.train["model"] == "linear"
    assert np.abs(np.concatenate([r.probabilities for r in onnx])
                  - np.concatenate([r.probabilities for r in keras])).max() < 1e-4
