import numpy as np
import pytest

from ser.features import extract, feature_names, feature_vector, spectrogram_frames, spectrogram_image

SR = 16000


@pytest.fixture
def cfg(params):
    return params["featurize"]


def speechlike(seconds, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 150 + 30 * np.sin(2 * np.pi * 3 * t)
    y = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / SR) / k for k in range(1, 6))
    return (0.2 * y + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.mark.parametrize("seconds", [0.01, 0.3, 2.0, 7.5])
def test_shapes_and_finiteness_for_any_length(cfg, seconds):
    vector, image = extract(speechlike(seconds), SR, cfg)
    assert vector.shape == (len(feature_names(cfg)),) and vector.dtype == np.float32
    assert image.shape == (cfg["spectrogram"]["n_mels"], spectrogram_frames(SR, cfg)) and image.dtype == np.float32
    assert np.isfinite(vector).all() and np.isfinite(image).all()
    assert image.min() >= 0 and image.max() <= 1


def test_feature_layout_matches_names(cfg):
    names = feature_names(cfg)
    assert len(names) == 2 * (40 + 12 + 7 + 1 + 1 + 64)
    assert names[0] == "mfcc_00_mean" and names[-1] == "mel_63_std"


def test_digital_silence_gives_finite_features(cfg):
    vector, image = extract(np.zeros(SR, np.float32), SR, cfg)
    assert np.isfinite(vector).all() and np.isfinite(image).all()


def test_feature_selection_changes_the_vector(cfg):
    cfg = dict(cfg, features=["zcr", "rms"], stats=["mean"])
    assert feature_vector(speechlike(1.0), SR, cfg).shape == (2,)
    assert feature_names(cfg) == ["zcr_00_mean", "rms_00_mean"]


def test_features_are_deterministic_and_discriminative(cfg):
    a1, b1 = extract(speechlike(1.0, seed=1), SR, cfg)
    a2, b2 = extract(speechlike(1.0, seed=1), SR, cfg)
    assert np.array_equal(a1, a2) and np.array_equal(b1, b2)
    other, _ = extract(speechlike(1.0, seed=1) * np.linspace(0, 1, SR, dtype=np.float32), SR, cfg)
    assert not np.allclose(a1, other)


def test_spectrogram_is_centre_cropped(cfg):
    y = np.concatenate([np.zeros(SR * 2, np.float32), speechlike(3.0), np.zeros(SR * 2, np.float32)])
    image = spectrogram_image(y, SR, cfg)
    assert image.mean() > 0.3  # the voiced middle, not the silent edges
