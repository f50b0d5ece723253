"""Speaker / corpus / utterance / global normalization and the small-group fallback."""

import numpy as np
import pandas as pd
import pytest

from ser.model import normalize


def two_speakers(n=40, dims=6, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(5.0, 2.0, (n, dims)), rng.normal(-3.0, 0.5, (n, dims))]).astype(np.float32)
    return x, np.array(["a"] * n + ["b"] * n)


def test_speaker_mode_standardizes_each_large_group():
    x, groups = two_speakers()
    prior = normalize.fit_prior(x, groups)
    z, used = normalize.normalize(x, groups, "speaker", prior, prior_clips=0)
    for g in "ab":
        assert np.allclose(z[groups == g].mean(0), 0, atol=1e-5) and np.allclose(z[groups == g].std(0), 1, atol=1e-3)
    assert used == {"a": (40, 1.0), "b": (40, 1.0)}


def test_prior_is_the_average_of_group_statistics():
    x, groups = two_speakers()
    prior = normalize.fit_prior(x, groups)
    expected = (x[groups == "a"].mean(0) + x[groups == "b"].mean(0)) / 2
    assert np.allclose(prior["mean"], expected, atol=1e-4)
    assert np.allclose(prior["var"], (x[groups == "a"].var(0) + x[groups == "b"].var(0)) / 2, rtol=1e-4)


def test_a_single_clip_falls_back_to_training_statistics_and_says_so():
    x, groups = two_speakers()
    prior = normalize.fit_prior(x, groups)
    one = x[:1]
    z, used = normalize.normalize(one, ["lonely"], "speaker", prior, prior_clips=10)
    n, weight = used["lonely"]
    assert n == 1 and weight == pytest.approx(1 / 11)
    # Not the degenerate own-statistics result (all zeros): mostly the prior's standardization.
    assert np.abs(z).max() > 0.1
    mean = weight * one[0] + (1 - weight) * np.asarray(prior["mean"])
    var = (1 - weight) * np.asarray(prior["var"])   # the single clip's own variance is 0
    assert np.allclose(z[0], (one[0] - mean) / np.sqrt(var + 1e-6), atol=1e-4)
    assert "lonely: 1 clip, 9% own statistics" in normalize.describe("speaker", used)


def test_shrinkage_weight_grows_with_group_size():
    x, groups = two_speakers(n=60)
    prior = normalize.fit_prior(x, groups)
    weights = [normalize.normalize(x[:n], ["a"] * n, "speaker", prior, 10)[1]["a"][1] for n in (1, 5, 30, 60)]
    assert weights == sorted(weights) and weights[0] < 0.1 and weights[-1] > 0.85


def test_global_mode_uses_training_statistics_for_everyone():
    x, groups = two_speakers()
    prior = normalize.fit_prior(x, np.zeros(len(x)))
    z, used = normalize.normalize(x, groups, "global", prior, 10)
    assert np.allclose(z.mean(0), 0, atol=1e-4) and np.allclose(z.std(0), 1, atol=1e-3)
    assert not np.allclose(z[groups == "b"].mean(0), 0, atol=0.1)   # groups are not removed
    assert "training statistics" in normalize.describe("global", used)


def test_spectrograms_are_normalized_per_band_ignoring_padding():
    rng = np.random.default_rng(1)
    images = rng.uniform(0.2, 1.0, (4, 8, 30)).astype(np.float32)
    images[:, 3, :] += 0.5                      # one loud band
    images[0, :, 20:] = 0.0                     # zero padding of a short clip
    prior = normalize.fit_prior(images, ["s"] * 4)
    z, _ = normalize.normalize(images, ["s"] * 4, "speaker", prior, prior_clips=0)
    speech = np.concatenate([z[0, :, :20], *z[1:]], axis=1)
    assert np.allclose(speech.mean(axis=1), 0, atol=1e-4) and np.allclose(speech.std(axis=1), 1, atol=1e-3)
    u, _ = normalize.normalize(images, None, "utterance", prior, 10)
    assert np.allclose(u[1].mean(axis=1), 0, atol=1e-4)   # each clip on its own


def test_training_groups_split_a_speaker_by_augmentation_copy():
    table = pd.DataFrame({"speaker": ["a", "a", "b"], "corpus": ["c", "c", "c"],
                          "augmentation": ["none", "copy1", "none"]})
    assert list(normalize.training_groups(table, "speaker")) == ["a/none", "a/copy1", "b/none"]
    assert list(normalize.training_groups(table, "corpus")) == ["c/none", "c/copy1", "c/none"]
    assert list(normalize.test_groups(table, "speaker")) == ["a", "a", "b"]


def test_group_rows_are_the_rows_of_each_group_in_order():
    """One sort gives, for every group in sorted order, exactly the rows a mask per group gives,
    ascending: the statistics sum the same rows in the same order, so no number moves."""
    from ser.model.normalize import group_rows

    groups = np.array(["b", "a", "c", "a", "b", "b", "d"])
    rows = group_rows(groups)
    assert list(rows) == ["a", "b", "c", "d"]
    for g, found in rows.items():
        assert found.tolist() == np.flatnonzero(groups == g).tolist()
    assert [r.tolist() for r in group_rows(np.arange(3)).values()] == [[0], [1], [2]]   # every clip alone
    assert group_rows(np.array([], dtype=str)) == {}
