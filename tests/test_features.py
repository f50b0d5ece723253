import numpy as np
import pytest

from ser.features.handcrafted import (
    extract,
    feature_names,
    feature_vector,
    spectrogram_frames,
    spectrogram_image,
)

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


def tone(freq, seconds):
    return (0.3 * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def test_spectrogram_is_centre_cropped(cfg):
    middle = speechlike(3.0)   # = spectrogram.duration_s
    # Edges unlike the middle (loud noise, a high tone): a crop that takes any edge sample, or
    # takes the middle shifted, gives another image.
    left = np.random.default_rng(1).uniform(-0.9, 0.9, SR * 2).astype(np.float32)
    y = np.concatenate([left, middle, tone(5000, 2.0)])
    assert np.array_equal(spectrogram_image(y, SR, cfg), spectrogram_image(middle, SR, cfg))


@pytest.mark.parametrize("seconds", [1.0, 3.0])
def test_spectrogram_is_librosa_log_mel_scaled_to_unit_range(cfg, seconds):
    """The image is librosa's log-mel (peak-referenced dB, 80 dB floor) of the clip zero-padded to
    spectrogram.duration_s, mapped from [-80, 0] dB to [0, 1]: lowest band in row 0."""
    import librosa

    spec = cfg["spectrogram"]
    y = speechlike(seconds, seed=2)
    padded = np.pad(y, (0, int(spec["duration_s"] * SR) - len(y)))
    mel = librosa.feature.melspectrogram(y=padded, sr=SR, n_fft=cfg["n_fft"], hop_length=spec["hop_length"],
                                         n_mels=spec["n_mels"], power=2.0)
    expected = (librosa.power_to_db(mel, ref=np.max, top_db=80.0) + 80.0) / 80.0
    image = spectrogram_image(y, SR, cfg)
    assert image.shape == expected.shape == (spec["n_mels"], spectrogram_frames(SR, cfg))
    np.testing.assert_allclose(image, expected, rtol=0, atol=1e-5)
    assert image.max() == 1.0                                            # the clip's peak
    assert (image.min() == 0.0) == (seconds < spec["duration_s"])         # the floor: padding only


@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0])
def test_a_tone_lands_in_its_mel_band(cfg, freq):
    import librosa

    n_mels = cfg["spectrogram"]["n_mels"]
    centres = librosa.mel_frequencies(n_mels + 2, fmax=SR / 2)[1:-1]   # band i peaks at centres[i]
    image = spectrogram_image(tone(freq, 3.0), SR, cfg)
    loudest = image[:, 2:-2].mean(axis=1)   # frames away from the clip's two ends
    assert loudest.argmax() == np.abs(centres - freq).argmin()
    far = np.abs(centres - freq) > 0.5 * freq   # bands far from the tone: near the floor
    assert loudest[far].max() < 0.5 < loudest.max()


def test_short_clip_is_zero_padded_at_the_end(cfg):
    spec = cfg["spectrogram"]
    image = spectrogram_image(tone(1000.0, 1.0), SR, cfg)
    # frame t spans samples [t*hop - n_fft/2, t*hop + n_fft/2): from this frame on, only padding
    first_silent = int(np.ceil((SR + cfg["n_fft"] // 2) / spec["hop_length"]))
    assert 0 < first_silent < image.shape[1]
    assert (image[:, first_silent:] == 0).all()            # padding is silence: the 80 dB floor
    assert (image[:, :first_silent].max(axis=0) > 0.5).all()  # every frame that holds the tone
    assert (spectrogram_image(np.zeros(SR, np.float32), SR, cfg) == 0).all()
