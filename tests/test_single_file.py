"""Scores for a single file of an unknown speaker (`ua_file`), and training that prepares for it
(`normalize.file_share`)."""

import numpy as np
import pandas as pd
import pytest

from ser.model.evaluation import cv_report, loco_report
from ser.model.network import build_model, input_names, set_determinism
from ser.model.training import (
    evaluate_splits,
    fold_splits,
    normalize_each_file,
    normalize_inputs,
    single_file_groups,
)

from .conftest import softmax_reference

CLASSES = ["angry", "happy", "sad"]


def speakers_dataset(n_speakers=6, per_speaker=60, offset=4.0, seed=0):
    """Clips whose label shifts the vector by 1 and whose speaker shifts it by up to ``offset``:
    speaker normalization removes the speaker, a single file cannot."""
    rng = np.random.default_rng(seed)
    rows, vectors, labels = [], [], []
    for s in range(n_speakers):
        shift = rng.normal(0, offset, 8)
        for i in range(per_speaker):
            label = i % 3
            vectors.append(shift + label * np.eye(8)[label] * 3 + rng.normal(0, 0.5, 8))
            labels.append(label)
            rows.append({"speaker": f"spk{s}", "corpus": f"corpus{s % 2}", "augmentation": "none",
                         "fold": s % 3, "source": len(rows)})
    table = pd.DataFrame(rows)
    return {"encoder": np.array(vectors, np.float32), "labels": np.array(labels)}, table


def params(mode="speaker", file_share=0.0, **normalize):
    return {"seed": 0, "labels": {"classes": CLASSES},
            "normalize": {"mode": mode, "prior_clips": 10, "var_prior_clips": 10, "file_share": file_share,
                          "small_groups": 0.0, "lone_file": "self", **normalize},
            "baseline": {"svm_c": 1.0, "linear_c": 0.05},
            "reference": {"sizes": [0, 1, 3, "all"], "draws": 2},
            "train": {"inputs": ["encoder"], "balance": "none", "lr": 0.01, "epochs": 15, "batch_size": 16,
                      "dropout": 0.1, "filters": 4, "dense_units": 16, "specaugment": False,
                      "specaugment_masks": 0, "mixup": 0.0}}


def with_egemaps(data):
    return {**data, "egemaps": data["encoder"][:, :4]}   # the SVM baselines read eGeMAPS


def test_each_file_alone_is_its_own_group_with_the_training_prior():
    data, table = speakers_dataset()
    rows = np.arange(60)                       # one speaker's clips
    norm = {"mode": "speaker", "prior_clips": 10, "file_share": 0.0}
    _, grouped, priors = normalize_inputs(data, table, np.arange(60, len(table)), rows, norm, ["encoder"])
    alone = normalize_each_file(data, rows, norm, priors, ["encoder"])["encoder"]
    x, prior = data["encoder"][rows], priors["encoder"]
    # one clip: mean and variance 1/11 its own (zero variance), 10/11 the prior's
    mean = (x + 10 * np.asarray(prior["mean"])) / 11
    expected = (x - mean) / np.sqrt(10 / 11 * np.asarray(prior["var"]) + 1e-6)
    np.testing.assert_allclose(alone, expected, rtol=1e-4, atol=1e-4)
    assert np.abs(alone - grouped["encoder"]).max() > 1.0   # the speaker's own statistics are not used
    # lone_file: training: the training statistics alone, none of the clip's own
    alone = normalize_each_file(data, rows, {**norm, "lone_file": "training"}, priors, ["encoder"])["encoder"]
    expected = (x - np.asarray(prior["mean"])) / np.sqrt(np.asarray(prior["var"]) + 1e-6)
    np.testing.assert_allclose(alone, expected, rtol=1e-4, atol=1e-4)


def test_single_file_groups_put_a_seeded_share_of_clips_alone():
    groups = np.array(["a"] * 500 + ["b"] * 500, dtype=object)
    assert (single_file_groups(groups, 0.0, 1) == groups).all()
    half = single_file_groups(groups, 0.5, 1)
    alone = np.array([g.startswith("file/") for g in half])
    assert 0.4 < alone.mean() < 0.6 and len(set(half[alone])) == alone.sum()
    assert (half[~alone] == groups[~alone]).all()
    assert (single_file_groups(groups, 0.5, 1) == half).all()            # reproducible
    assert not (single_file_groups(groups, 0.5, 2) == half).all()        # keyed by the seed
    assert all(g.startswith("file/") for g in single_file_groups(groups, 1.0, 1))


@pytest.mark.slow
def test_ua_file_is_reported_and_equals_ua_when_nothing_is_normalized_by_group():
    data, table = speakers_dataset()
    data = with_egemaps(data)
    results = evaluate_splits(data, table, fold_splits(table), params(mode="global"), log=lambda m: None)
    for r in results:   # global: a file alone gets exactly the statistics it gets in a group
        np.testing.assert_array_equal(r["probabilities_file"], r["probabilities"])
    report = cv_report(results, data["labels"], table, CLASSES)
    assert report["ua_file"] == report["ua"]
    loco = loco_report(results, data["labels"], CLASSES)
    assert all(v["ua_file"] == v["ua"] for v in loco.values())


@pytest.mark.slow
def test_speaker_normalization_helps_grouped_clips_more_than_single_files():
    data, table = speakers_dataset()
    data = with_egemaps(data)
    results = evaluate_splits(data, table, fold_splits(table), params(mode="speaker"), log=lambda m: None)
    report = cv_report(results, data["labels"], table, CLASSES)
    assert report["ua"]["mean"] > 0.9                      # the speaker offset is removed
    assert report["ua_file"]["mean"] < report["ua"]["mean"] - 0.1
    # by reference size: 0 is the file alone, all the whole speaker, and a few clips lie between
    from ser.model.evaluation import cv_reference_report

    curve = cv_reference_report(results, data["labels"], 3, 10, 0.5)
    for model in ("network", "linear"):
        ua = {k: v["ua"]["mean"] for k, v in curve[model].items()}
        assert ua["0"] < ua["3"] < ua["all"] + 0.02 and ua["1"] < ua["all"]
    assert curve["network"]["0"]["ua"]["mean"] == pytest.approx(report["ua_file"]["mean"])
    assert curve["network"]["all"]["ua"]["mean"] == pytest.approx(report["ua"]["mean"])
    assert all(len(r["by_reference"]["3"]["network"]) == 2 for r in results)   # reference.draws


@pytest.mark.slow
def test_the_linear_model_trains_and_exports_like_the_network(tmp_path):
    """train.model: linear: softmax regression over the same inputs, through the same fit."""
    data, table = speakers_dataset()
    cfg = {**params()["train"], "model": "linear"}
    set_determinism(0)
    model = build_model({"encoder": (8,)}, 3, cfg)
    assert [type(layer).__name__ for layer in model.layers] == ["InputLayer", "Dense"]
    run = {**params(mode="speaker"), "train": cfg}
    results = evaluate_splits(with_egemaps(data), table, fold_splits(table), run, log=lambda m: None)
    assert cv_report(results, data["labels"], table, CLASSES)["ua"]["mean"] > 0.9
    # The shipped linear model is the linear probe: the same probabilities at every reference size.
    for r in results:
        for size, v in r["by_reference"].items():
            for net, lin in zip(v["network"], v["linear"]):
                np.testing.assert_allclose(net, lin, atol=1e-4)


def test_the_encoder_branch_builds_and_takes_its_input_by_name():
    set_determinism(0)
    model = build_model({"encoder": (1024,), "egemaps": (88,)}, 7, params()["train"])
    assert input_names(model) == ["egemaps", "encoder"]   # branches are built in a fixed order
    rng = np.random.default_rng(0)
    inputs = {"encoder": rng.normal(0, 1, (2, 1024)).astype(np.float32),
              "egemaps": rng.normal(0, 1, (2, 88)).astype(np.float32)}
    probs = model.predict(inputs, verbose=0)
    assert probs.shape == (2, 7)
    np.testing.assert_allclose(probs, softmax_reference(model, inputs), atol=1e-5)   # the head, in NumPy
    swapped = model.predict({**inputs, "encoder": inputs["encoder"][::-1].copy()}, verbose=0)
    assert np.abs(swapped - probs).max() > 1e-4   # the encoder input is the one named "encoder", and it is used
