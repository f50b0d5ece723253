"""``ser.audio.dsp`` and the features built on it compute what librosa computes.

Prediction uses NumPy-only re-expressions of librosa's primitives (see ``ser/audio/dsp.py`` for why);
these tests hold them to librosa itself, bit for bit where the arithmetic is the same, on
synthetic signals and the real 44.1 kHz JL-Corpus clips.
"""

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from ser.audio import decode, dsp
from ser.features.handcrafted import feature_vector, filterbanks, frame_features

from .conftest import ROOT

SR = 16000
JL = ROOT.parent / "shared" / "samples" / "jl_corpus"
CFG = {"features": ["mfcc", "chroma", "contrast", "zcr", "rms", "mel"], "stats": ["mean", "std"], "n_mfcc": 40,
       "n_mels": 64, "n_fft": 1024, "hop_length": 256,
       "spectrogram": {"n_mels": 64, "hop_length": 512, "duration_s": 3.0}, "n_examples": 0}


def speechlike(seconds, seed=0, gaps=False):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 150 + 30 * np.sin(2 * np.pi * 3 * t)
    y = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / SR) / k for k in range(1, 6))
    y = 0.2 * y + 0.01 * rng.standard_normal(len(t))
    if gaps:  # silent stretches, as between words
        y *= (np.sin(2 * np.pi * 0.7 * t) > -0.2)
    return y.astype(np.float32)


def signals():
    out = {"speech 2s": speechlike(2.0), "speech gaps 4s": speechlike(4.0, 1, gaps=True),
           "short 0.05s": speechlike(0.05, 2), "noise": np.random.default_rng(3).uniform(-0.5, 0.5, SR).astype(np.float32)}
    for path in sorted(JL.glob("*.wav"))[:3]:
        out[path.name] = decode.load(path, SR)
    return out


@pytest.fixture(scope="module", params=list(signals()))
def signal(request):
    return signals()[request.param]


def reference_blocks(y, cfg):
    """The feature blocks as ser computed them with librosa before ser.audio.dsp existed."""
    y = np.pad(y, (0, max(0, cfg["n_fft"] - len(y))))
    magnitude = np.abs(librosa.stft(y, n_fft=cfg["n_fft"], hop_length=cfg["hop_length"]))
    power = magnitude ** 2
    log_mel = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=SR, n_mels=cfg["n_mels"]))
    return {"mfcc": librosa.feature.mfcc(S=log_mel, n_mfcc=cfg["n_mfcc"]),
            "chroma": librosa.feature.chroma_stft(S=power, sr=SR, tuning=0.0),
            "contrast": librosa.feature.spectral_contrast(S=magnitude, sr=SR),
            "zcr": librosa.feature.zero_crossing_rate(y, frame_length=cfg["n_fft"], hop_length=cfg["hop_length"]),
            "rms": librosa.feature.rms(S=magnitude, frame_length=cfg["n_fft"]), "mel": log_mel}


def reference_vector(y, cfg):
    blocks = reference_blocks(y, cfg)
    stats = {"mean": np.mean, "std": np.std}
    parts = [stats[stat](blocks[name], axis=1) for name in cfg["features"] for stat in cfg["stats"]]
    return np.nan_to_num(np.concatenate(parts).astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def test_stft_and_decibels_are_librosas_bit_for_bit(signal):
    window = filterbanks(SR, CFG)["window"]
    y = np.pad(signal, (0, max(0, 1024 - len(signal))))
    expected = np.abs(librosa.stft(y, n_fft=1024, hop_length=256))
    got = dsp.stft_magnitude(y, window, 256)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == expected.dtype == np.float32
    power = got ** 2
    np.testing.assert_array_equal(dsp.power_to_db(power), librosa.power_to_db(power))
    np.testing.assert_array_equal(dsp.power_to_db(power, ref=power.max(), top_db=80.0),
                                  librosa.power_to_db(power, ref=np.max, top_db=80.0))


def test_feature_blocks_are_librosas_bit_for_bit(signal):
    got, expected = frame_features(signal, SR, CFG), reference_blocks(signal, CFG)
    assert list(got) == CFG["features"]
    for name in CFG["features"]:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
        # same memory layout too, so the statistics over time add in the same order
        assert got[name].flags["C_CONTIGUOUS"] == expected[name].flags["C_CONTIGUOUS"], name
    np.testing.assert_array_equal(feature_vector(signal, SR, CFG), reference_vector(signal, CFG))


@pytest.mark.parametrize("top_db", [20, 30, 60])
def test_silence_split_is_librosas(signal, top_db):
    np.testing.assert_array_equal(dsp.non_silent_intervals(signal, top_db), librosa.effects.split(signal, top_db=top_db))


def test_silence_split_at_the_edges():
    quiet_then_loud = np.r_[np.full(5000, 1e-4), np.full(3000, 0.5), np.full(5000, 1e-4)].astype(np.float32)
    intervals = dsp.non_silent_intervals(quiet_then_loud, 30)
    np.testing.assert_array_equal(intervals, librosa.effects.split(quiet_then_loud, top_db=30))
    assert len(intervals) == 1 and intervals[0, 0] <= 5000 <= 8000 <= intervals[0, 1] < 13000
    tiny = np.full(10, 0.5, np.float32)  # shorter than one frame: all of it is sound
    np.testing.assert_array_equal(dsp.non_silent_intervals(tiny, 30), [[0, 10]])


def test_silence_split_does_not_depend_on_the_level(signal):
    """Relative through and through: librosa floors frame power at 1e-10, which in a recording
    peaking at -60 dBFS counts floored pauses as sound."""
    pauses = np.r_[signal, np.zeros(4000, np.float32), signal, 1e-6 * np.ones(3000, np.float32)]
    reference = dsp.non_silent_intervals(pauses, 30)
    for gain_db in (-70, -50, -30, -10):
        np.testing.assert_array_equal(dsp.non_silent_intervals(pauses * np.float32(10 ** (gain_db / 20)), 30),
                                      reference, err_msg=str(gain_db))


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampling_is_librosas_soxr_hq(rate):
    y = np.random.default_rng(rate).uniform(-0.5, 0.5, rate + 17).astype(np.float32)
    got = dsp.resample(y, rate, SR)
    np.testing.assert_array_equal(got, librosa.resample(y, orig_sr=rate, target_sr=SR, res_type="soxr_hq"))
    assert got.dtype == np.float32


@pytest.mark.skipif(not JL.is_dir(), reason=f"{JL} is absent")
def test_loading_a_44k_recording_matches_librosa_load():
    """librosa's decoding and resampling, with the recording's mean (its DC offset) removed
    first, as ``decode.to_mono`` does before resampling."""
    path = sorted(JL.glob("*.wav"))[0]
    native, rate = librosa.load(path, sr=None, mono=True)
    centred = (native - np.float32(np.mean(native, dtype=np.float64))).astype(np.float32)
    expected = librosa.resample(centred, orig_sr=rate, target_sr=SR, res_type="soxr_hq")
    np.testing.assert_array_equal(decode.load(path, SR), expected)
    assert sf.info(str(path)).samplerate == 44100


def test_filterbanks_are_cached_and_read_only():
    banks = filterbanks(SR, CFG)
    assert banks is filterbanks(SR, dict(CFG))
    assert banks["mel"].shape == (64, 513) and banks["chroma"].shape == (12, 513) and banks["window"].shape == (1024,)
    with pytest.raises(ValueError):
        banks["mel"][0, 0] = 1.0
    assert filterbanks(SR, dict(CFG, n_mels=32))["mel"].shape == (32, 513)


def test_contrast_bands_refuse_a_rate_below_the_top_octave():
    # The Nyquist frequency is half the sample rate: 4000 Hz at 8 kHz, below the top band's 6400 Hz.
    with pytest.raises(ValueError) as err:
        dsp.contrast_bands(8000, 1024)
    assert str(err.value) == ("spectral contrast's octave bands from 200 Hz need a Nyquist frequency above 6400 Hz "
                              "(where the top band starts); at a sample rate of 8000 Hz it is 4000 Hz")
    with pytest.raises(ValueError, match="at a sample rate of 12800 Hz it is 6400 Hz"):
        dsp.contrast_bands(12800, 1024)
    assert len(dsp.contrast_bands(12802, 1024)) == 7
    assert len(dsp.contrast_bands(SR, 1024)) == 7
    assert Path(dsp.__file__).parent == ROOT / "ser" / "audio"   # this checkout's code, not an installed copy
