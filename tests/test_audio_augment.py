import numpy as np
import pandas as pd
import pytest

from ser.audio import cleaning, decode, effects
from ser.audio import pack as audio_pack
from ser.core.errors import DataError
from ser.data.augment import augment
from ser.data.preparation import clean_clip

from .conftest import write_speech, write_tone

SR = 16000


def tone(seconds=1.0, freq=220.0):
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_load_keeps_the_voice_channel_of_a_stereo_file_and_resamples(tmp_path):
    """A 44.1 kHz stereo file, a voice on its right channel and a louder hum on its left: load
    gives the voice channel alone (not a mix, not the loudest), as mono float32 at 16 kHz."""
    import soundfile as sf

    voice, rate = sf.read(write_speech(tmp_path / "voice.wav", index=0), dtype="float32")
    assert rate == 44100
    hum = 0.5 * np.sin(2 * np.pi * 100 * np.arange(len(voice)) / rate).astype(np.float32)
    assert np.sqrt(np.mean(hum ** 2)) > 2 * np.sqrt(np.mean(voice ** 2))
    sf.write(tmp_path / "stereo.wav", np.stack([hum, voice], axis=1), rate, subtype="FLOAT")
    sf.write(tmp_path / "mono.wav", voice, rate, subtype="FLOAT")
    y = decode.load(tmp_path / "stereo.wav", SR)
    assert y.ndim == 1 and y.dtype == np.float32 and abs(len(y) - round(len(voice) * SR / rate)) <= 1
    np.testing.assert_array_equal(y, decode.load(tmp_path / "mono.wav", SR))   # the voice channel, resampled
    sf.write(tmp_path / "mix.wav", (hum + voice) / 2, rate, subtype="FLOAT")
    assert not np.allclose(y, decode.load(tmp_path / "mix.wav", SR), atol=1e-3)  # not the mix of both


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("hello")
    with pytest.raises(DataError, match=r"bad.wav: cannot decode audio"):
        decode.load(bad, SR)


def test_remove_silence_drops_quiet_parts():
    y = np.concatenate([np.zeros(SR, np.float32), tone(0.5), np.zeros(SR, np.float32), tone(0.5)])
    trimmed = cleaning.remove_silence(y, top_db=30)
    assert 0.9 * SR <= len(trimmed) <= 1.2 * SR
    assert len(cleaning.remove_silence(np.zeros(SR, np.float32), 30)) == 0   # digital silence: nothing kept


def test_clean_clip_reports_silence_and_short_clips(tmp_path):
    import soundfile as sf
    sf.write(tmp_path / "silent.wav", np.zeros(SR), SR)
    assert clean_clip(str(tmp_path / "silent.wav"), SR, 30, 0.3, -23) == (None, "all silence")
    write_tone(tmp_path / "short.wav", seconds=0.1)
    pcm, reason = clean_clip(str(tmp_path / "short.wav"), SR, 30, 0.3, -23)
    assert pcm is None and "prepare.min_duration_s" in reason
    pcm, reason = clean_clip(str(write_tone(tmp_path / "ok.wav", seconds=1.0)), SR, 30, 0.3, -23)
    assert reason is None and pcm.dtype == np.int16


def test_noise_has_the_requested_snr():
    y = tone(2.0)
    noisy = effects.add_noise(y, snr_db=10, rng=np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(y ** 2) / np.mean((noisy - y) ** 2))
    assert abs(snr - 10) < 0.2


def test_pitch_shift_keeps_length_and_moves_pitch():
    import librosa
    y = tone(1.0, 220.0)
    up = effects.pitch_shift(y, SR, 12.0)
    assert len(up) == len(y)
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.fft.rfftfreq(len(up), 1 / SR)[spectrum.argmax()] - 440) < 10
    assert abs(librosa.yin(up, fmin=100, fmax=1000, sr=SR).mean() - 440) < 10


def test_pack_round_trip(tmp_path):
    clips = [tone(0.1), tone(0.2, 330), np.zeros(0, np.float32)]
    audio_pack.save_pack(tmp_path / "p.npz", clips)
    pack = audio_pack.Pack(tmp_path / "p.npz")
    assert len(pack) == 3
    assert np.allclose(pack[1], clips[1], atol=1e-4)
    assert len(pack[2]) == 0
    assert [f.name for f in tmp_path.iterdir()] == ["p.npz"]  # no temp file left behind


def test_gain_scales_and_clips():
    y = tone(0.2)
    assert np.allclose(effects.apply_gain(y, -6.0), y * 10 ** (-6 / 20), atol=1e-6)
    assert np.abs(effects.apply_gain(y, 20.0)).max() == 1.0


def test_band_limit_removes_what_is_outside_the_band():
    low, high = tone(1.0, 100.0), tone(1.0, 6000.0)
    mid = tone(1.0, 1000.0)
    for y, kept in ((low, False), (high, False), (mid, True)):
        out = effects.band_limit(y, SR, 300.0, 3400.0)
        ratio = np.sqrt(np.mean(out[SR // 4:] ** 2) / np.mean(y[SR // 4:] ** 2))
        assert (ratio > 0.8) if kept else (ratio < 0.1)
    assert np.sqrt(np.mean(effects.band_limit(high, SR, 300.0, SR / 2)[SR // 4:] ** 2)) > 0.3  # high-pass only


def test_clean_is_one_rule():
    with pytest.raises(DataError, match="^all silence$"):
        cleaning.clean(np.zeros(SR, np.float32), SR, 30, 0.3, -23)
    with pytest.raises(DataError, match=r"^shorter than prepare.min_duration_s=0.3 after silence removal \(0.20 s"):
        cleaning.clean(tone(0.2), SR, 30, 0.3, -23)
    assert len(cleaning.clean(tone(0.5), SR, 30, 0.3, -23)) == SR // 2


def clip_set(n_speakers=6, per_speaker=4):
    rows, pcm = [], []
    for s in range(n_speakers):
        for i in range(per_speaker):
            rows.append({"path": f"s{s}_{i}.wav", "speaker": f"spk{s}", "corpus": "c",
                         "emotion": ["angry", "sad"][i % 2], "fold": s % 3, "augmentation": "none"})
            pcm.append(audio_pack.to_int16(tone(0.5, 200 + 10 * i)))
    frame = pd.DataFrame(rows)
    return frame.assign(source=np.arange(len(frame))), pcm


def test_every_clip_gets_copies_that_follow_its_fold(params):
    params["augment"].update(methods=["gain", "eq", "pitch", "noise"], copies=2)
    frame, pcm = clip_set()
    table, copies = augment(frame, pcm, params)
    assert len(table) == 3 * len(frame) and len(copies) == 2 * len(frame)   # the originals are not repeated
    assert (table.augmentation.iloc[:len(frame)] == "none").all()   # originals first, then the copies in order
    assert list(table.augmentation.iloc[len(frame):]) == ["copy1"] * len(frame) + ["copy2"] * len(frame)
    assert (table.groupby("source").fold.nunique() == 1).all() and (table.groupby("source").size() == 3).all()
    for i in range(len(frame)):   # copies of clip i differ from it and from each other
        first, second = copies[i], copies[len(frame) + i]
        assert not np.array_equal(first, pcm[i]) and not np.array_equal(first, second)
    durations = [len(c) / 16000 for c in pcm] + [len(c) / 16000 for c in copies]
    assert np.allclose(table.duration_s.astype(float), durations, atol=1e-4)


def test_no_methods_means_no_copies(params):
    params["augment"]["methods"] = []
    frame, pcm = clip_set()
    table, copies = augment(frame, pcm, params)
    assert len(table) == len(frame) and (table.augmentation == "none").all() and len(copies) == 0


def test_paper_protocol_gives_copies_their_own_folds(params):
    params["augment"]["before_split"] = True
    params["prepare"]["split"] = "random"
    params["augment"]["methods"] = ["gain", "noise"]
    frame, pcm = clip_set(n_speakers=10)
    table, _ = augment(frame, pcm, params)
    assert table.groupby("source").fold.nunique().max() > 1  # copies of one recording in different folds: the leak


def test_augmentation_is_deterministic(params):
    params["augment"]["methods"] = ["gain", "eq", "noise"]
    frame, pcm = clip_set()
    _, first = augment(frame, pcm, params)
    _, second = augment(frame, pcm, params)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    params["seed"] += 1
    _, third = augment(frame, pcm, params)
    assert not all(np.array_equal(a, b) for a, b in zip(first, third))


def test_outputs_get_the_usual_permissions(tmp_path):
    import os

    from ser.core.files import write_json
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644


def test_a_pack_is_written_clip_by_clip_as_np_savez_writes_it_and_read_clip_by_clip(tmp_path):
    """``save_pack`` streams the clips into the .npz (the concatenation never in memory) and the
    bytes are those of ``np.savez`` on the joined arrays: outputs keep their hashes. ``Pack``
    reads a clip from the file when asked for it, not the audio when opened."""
    from ser.audio.pack import Pack, save_pack, to_int16

    rng = np.random.default_rng(0)
    clips = [to_int16(0.3 * rng.standard_normal(n).astype(np.float32)) for n in (1000, 0, 37, 16000)]
    clips.append(0.5 * np.ones(5, np.float32))   # a float clip is stored as int16
    save_pack(tmp_path / "pack.npz", clips)
    joined = np.concatenate([c if c.dtype == np.int16 else to_int16(c) for c in clips])
    np.savez(tmp_path / "reference.npz", audio=joined,
             offsets=np.concatenate([[0], np.cumsum([len(c) for c in clips])]).astype(np.int64))
    assert (tmp_path / "pack.npz").read_bytes() == (tmp_path / "reference.npz").read_bytes()
    pack = Pack(tmp_path / "pack.npz")
    assert len(pack) == 5 and list(pack.lengths) == [len(c) for c in clips]
    assert all(np.array_equal(pack.pcm(i), joined[a:b]) for i, (a, b) in
               enumerate(zip(pack.offsets[:-1], pack.offsets[1:])))
    assert all(np.array_equal(a, b) for a, b in zip(pack.pcms(), pack.stored))
    assert all(np.array_equal(pack[i], pack.pcm(i).astype(np.float32) / 32768) for i in range(5))
    assert type(pack.pcm(0)) is np.ndarray and pack.pcm(0).flags.owndata   # its own array: no map kept
    with pytest.raises(IndexError):
        pack.stored[5]
    # A pack copied clip by clip (augment's originals) is the same file.
    save_pack(tmp_path / "copy.npz", pack.stored)
    assert (tmp_path / "copy.npz").read_bytes() == (tmp_path / "pack.npz").read_bytes()
    save_pack(tmp_path / "empty.npz", [])
    assert len(Pack(tmp_path / "empty.npz")) == 0


def test_a_damaged_or_missing_pack_is_one_line_naming_it(tmp_path):
    from ser.audio.pack import Pack, save_pack
    from ser.core.errors import DataError

    save_pack(tmp_path / "pack.npz", [np.zeros(40000, np.int16)] * 3)
    data = (tmp_path / "pack.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:len(data) // 2])
    for name, message in (("cut.npz", "not a readable pack of clips"), ("absent.npz", "not found")):
        with pytest.raises(DataError, match=message) as err:
            Pack(tmp_path / name)
        assert str(err.value).startswith(str(tmp_path / name)) and "\n" not in str(err.value)
