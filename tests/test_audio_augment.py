import numpy as np
import pandas as pd
import pytest

from ser import audio
from ser.augment import augment
from ser.errors import DataError
from ser.prepare import clean_clip

from .conftest import write_tone

SR = 16000


def tone(seconds=1.0, freq=220.0):
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_load_mixes_stereo_and_resamples(tmp_path):
    path = write_tone(tmp_path / "x.wav", seconds=0.5, sample_rate=44100, channels=2)
    y = audio.load(path, SR)
    assert y.ndim == 1 and y.dtype == np.float32 and abs(len(y) - SR // 2) <= 1


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("hello")
    with pytest.raises(DataError, match=r"bad.wav: cannot decode audio"):
        audio.load(bad, SR)


def test_remove_silence_drops_quiet_parts():
    y = np.concatenate([np.zeros(SR, np.float32), tone(0.5), np.zeros(SR, np.float32), tone(0.5)])
    trimmed = audio.remove_silence(y, top_db=30)
    assert 0.9 * SR <= len(trimmed) <= 1.2 * SR
    assert len(audio.remove_silence(np.zeros(SR, np.float32), 30)) == 0 or audio.is_silent(np.zeros(SR))


def test_clean_clip_reports_silence_and_short_clips(tmp_path):
    import soundfile as sf
    sf.write(tmp_path / "silent.wav", np.zeros(SR), SR)
    assert clean_clip(str(tmp_path / "silent.wav"), SR, 30, 0.3) == (None, "all silence")
    write_tone(tmp_path / "short.wav", seconds=0.1)
    pcm, reason = clean_clip(str(tmp_path / "short.wav"), SR, 30, 0.3)
    assert pcm is None and "prepare.min_duration_s" in reason
    pcm, reason = clean_clip(str(write_tone(tmp_path / "ok.wav", seconds=1.0)), SR, 30, 0.3)
    assert reason is None and pcm.dtype == np.int16


def test_noise_has_the_requested_snr():
    y = tone(2.0)
    noisy = audio.add_noise(y, snr_db=10, rng=np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(y ** 2) / np.mean((noisy - y) ** 2))
    assert abs(snr - 10) < 0.2


def test_pitch_shift_keeps_length_and_moves_pitch():
    import librosa
    y = tone(1.0, 220.0)
    up = audio.pitch_shift(y, SR, 12.0)
    assert len(up) == len(y)
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.fft.rfftfreq(len(up), 1 / SR)[spectrum.argmax()] - 440) < 10
    assert librosa is not None


def test_pack_round_trip(tmp_path):
    clips = [tone(0.1), tone(0.2, 330), np.zeros(0, np.float32)]
    audio.save_pack(tmp_path / "p.npz", clips)
    pack = audio.Pack(tmp_path / "p.npz")
    assert len(pack) == 3
    assert np.allclose(pack[1], clips[1], atol=1e-4)
    assert len(pack[2]) == 0
    assert [f.name for f in tmp_path.iterdir()] == ["p.npz"]  # no temp file left behind


def clip_set(params, n_per_split=6):
    rows, pcm = [], []
    for split in ("train", "val", "test"):
        for i in range(n_per_split):
            rows.append({"path": f"{split}{i}.wav", "speaker": f"{split}_spk{i % 2}", "corpus": "c",
                         "emotion": ["angry", "sad"][i % 2], "split": split, "augmentation": "none"})
            pcm.append(audio.to_int16(tone(0.5, 200 + 10 * i)))
    return pd.DataFrame(rows), pcm


def test_augmentation_only_touches_train(params):
    frame, pcm = clip_set(params)
    table, clips = augment(frame, pcm, params)
    copies = table[table.augmentation != "none"]
    assert len(copies) == 2 * 6 and set(copies.split) == {"train"}
    assert set(copies.path) == set(frame[frame.split == "train"].path)
    held_out = table[table.split != "train"]
    assert (held_out.augmentation == "none").all()
    for i in np.flatnonzero((table.split != "train").to_numpy()):  # held-out audio unchanged
        assert np.array_equal(clips[i], pcm[i])
    assert len(clips) == len(table)


def test_paper_protocol_augments_before_splitting(params):
    params["augment"]["before_split"] = True
    params["prepare"]["split"] = "random"
    frame, pcm = clip_set(params, n_per_split=10)
    table, _ = augment(frame, pcm, params)
    assert len(table) == 3 * len(frame)
    copies_by_source = table.groupby("path").split.nunique()
    assert copies_by_source.max() > 1  # copies of one recording land in different splits: the leak
    assert (table[table.split == "test"].augmentation != "none").any()


def test_augmentation_is_deterministic(params):
    frame, pcm = clip_set(params)
    _, first = augment(frame, pcm, params)
    _, second = augment(frame, pcm, params)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    params["seed"] += 1
    _, third = augment(frame, pcm, params)
    assert not all(np.array_equal(a, b) for a, b in zip(first, third))
