"""Issue 21 (a hostile audit), the problems fixed so far: each test failed before its fix."""

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ser.app import analysis, predict
from ser.app.rows import json_rows

from .conftest import checkout_env, write_speech


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ser", *map(str, args)], capture_output=True, text=True,
                          env=checkout_env(), cwd=cwd)


def test_a_long_recording_without_segment_is_one_row(tiny_model, tmp_path, monkeypatch):
    """#5: the pieces a long file is cut into for memory are not rows of their own."""
    y, sr = sf.read(write_speech(tmp_path / "one.wav", index=0), dtype="float32")
    sf.write(tmp_path / "long.wav", np.concatenate([y] * 4), sr)
    monkeypatch.setattr(analysis, "LONG_INPUT_S", 3.0)
    monkeypatch.setattr(analysis, "AUTO_SEGMENT_S", 2.0)
    p = predict.Predictor(tiny_model)
    [result] = p.analyse([tmp_path / "long.wav"], progress=False)
    assert len(result.segments) > 2 and result.auto_segmented
    rows = json_rows([result], p.classes, 1, None, segmented=False)
    assert len(rows) == 1 and rows[0]["file"] == str(tmp_path / "long.wav")
    # asked for, segments are rows
    [asked] = p.analyse([tmp_path / "long.wav"], segment_s=2.0, progress=False)
    assert len(json_rows([asked], p.classes, 1, None, segmented=True)) == len(asked.segments) + 1


def test_csv_cells_cannot_be_formulas_and_names_cannot_forge_lines(tiny_model, tmp_path):
    """#9: a name starting like a formula is written as text; a newline in a name is escaped in
    the table."""
    evil = write_speech(tmp_path / "=HYPERLINK(1).wav", index=1, seconds=1.5)
    run = _cli("predict", evil.name, "--model", tiny_model, "--format", "csv", "-q", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    [row] = list(csv.DictReader(io.StringIO(run.stdout)))
    assert row["file"] == "'=HYPERLINK(1).wav"
    forged = write_speech(tmp_path / "a\nb.wav", index=1, seconds=1.5)
    run = _cli("predict", forged, "--model", tiny_model, "-q")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 3 and "a\\nb.wav" in lines[2]   # normalization, header, one row


def test_usage_hints_name_real_commands(tmp_path):
    """#20: the top-level parser's hint is `python -m ser --help`, a command's its own."""
    run = _cli("bogus")
    assert run.returncode == 2 and "(see `python -m ser --help`)" in run.stderr and "ser ser" not in run.stderr
    run = _cli("predict", "x.wav", "--format", "xml")
    assert "(see `python -m ser predict --help`)" in run.stderr


def test_an_absurd_segment_is_a_usage_error(tmp_path):
    """#13: --segment 1e308 overflowed into a traceback."""
    write_speech(tmp_path / "v.wav")
    run = _cli("predict", tmp_path / "v.wav", "--segment", "1e308")
    assert run.returncode == 2 and run.stderr.startswith("error: argument --segment: must be a finite number of "
                                                          "seconds > 0 and at most 86400")
    assert "Traceback" not in run.stderr


def test_evaluate_prints_no_rows_for_classes_without_clips(tiny_model, tmp_path):
    """#22: a corpus without `surprised` gets no row of zeros for it, and says so."""
    folder = tmp_path / "table_corpus"
    rows = []
    for i, emotion in enumerate(["angry", "happy", "sad"]):
        write_speech(folder / f"c{i}.wav", index=i, seconds=1.5)
        rows.append(f"c{i}.wav,{emotion},spk1")
    (folder / "labels.csv").write_text("path,emotion,speaker\n" + "\n".join(rows) + "\n")
    run = _cli("evaluate", folder, "--labels", folder / "labels.csv", "--model", tiny_model, "-q")
    assert run.returncode == 0, run.stderr
    printed = [line.split()[0] for line in run.stdout.splitlines() if line.split() and line.split()[0] in
               ("angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised")]
    assert printed == ["angry", "happy", "sad"]
    assert "no clips of disgust, fearful, neutral, surprised" in run.stdout


def test_bundle_not_found_names_the_flag(tmp_path):
    """#21: run from another folder, the message says how to name the bundle."""
    write_speech(tmp_path / "v.wav")
    run = _cli("predict", "v.wav", cwd=tmp_path)
    assert run.returncode == 2 and "--model" in run.stderr and run.stderr.count("\n") == 1
    assert "Traceback" not in run.stderr


def test_bad_params_files_are_one_line(tmp_path):
    """#3 and #13: a "billion laughs", a Latin-1 byte, deep nesting and a folder."""
    import time

    import pytest

    from ser.core.config import load_params
    from ser.core.errors import ConfigError

    laughs = ['a0: &a0 [x, x, x, x, x, x, x, x, x]']
    laughs += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    cases = {"laughs.yaml": ("\n".join(laughs) + "\n", "its anchors and aliases expand to more than 100000 values"),
             "latin1.yaml": (None, "not UTF-8 text (byte 0xe9 at offset 6)"),
             "deep.yaml": ("[" * 5000 + "]" * 5000, "nested too deeply to be a params file")}
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(b"seed: \xe9\n" if text is None else text.encode())
        began = time.perf_counter()
        with pytest.raises(ConfigError) as err:
            load_params(path)
        assert str(err.value) == f"{path}: {message}" + ("; write the settings out instead" if "laughs" in name
                                                         else "; save it as UTF-8" if "latin" in name else "")
        assert time.perf_counter() - began < 5   # 9 levels of 9 aliases: 387 million values if expanded
    with pytest.raises(ConfigError, match=r": is a folder, not the params file$"):
        load_params(tmp_path)


def test_ser_jobs_must_be_a_number(monkeypatch):
    """#13: SER_JOBS=abc was a ValueError traceback."""
    import pytest

    from ser.core.errors import ConfigError
    from ser.core.parallel import n_jobs

    for bad in ("abc", "0", "-2", "1.5", "²"):
        monkeypatch.setenv("SER_JOBS", bad)
        with pytest.raises(ConfigError, match=r"^SER_JOBS: must be a whole number of worker processes from 1 to 4096"):
            n_jobs()
    monkeypatch.setenv("SER_JOBS", "3")
    assert n_jobs() == 3


def test_a_bundle_with_a_huge_number_is_one_line(tmp_path):
    """#13: a 5001-digit number in bundle.json was a ValueError traceback."""
    import pytest

    from ser.bundle.format import load_bundle
    from ser.core.errors import DataError

    (tmp_path / "bundle.json").write_text('{"bundle_version": ' + "9" * 5001 + "}")
    with pytest.raises(DataError, match=r"bundle.json: not a bundle \("):
        load_bundle(tmp_path)


@pytest.mark.slow
def test_serve_with_the_keras_backend_answers(egemaps_model, tmp_path):
    """#2: `serve --backend keras` (or a bundle without model.onnx) crashed in openSMILE while
    warming up: openSMILE's library is now loaded before Keras builds the model."""
    import requests

    from .conftest import running_server

    clip = write_speech(tmp_path / "v.wav", seconds=1.5)
    with running_server(egemaps_model, "--backend", "keras", "-q", log=tmp_path / "log") as url:
        response = requests.post(url + "api/predict", files={"file": ("v.wav", clip.read_bytes())}, timeout=120)
    assert response.status_code == 200, response.text
    [row] = response.json()
    expected = json.loads(_cli("predict", clip, "--model", egemaps_model, "--format", "json", "-q").stdout)[0]
    assert row["emotion"] == expected["emotion"]
    assert abs(row["confidence"] - expected["confidence"]) < 1e-4


def test_absurd_sample_rates_and_samples_are_refused_in_one_line(tmp_path):
    """#4: a WAV header claiming 1 Hz had predict resample for hours; #18: one 1e30 sample
    silently turned speech into `no speech`; #17: a FLAC whose header does not give its length
    was "576460752303424 s long"."""
    import time

    import pytest

    from ser.audio import decode
    from ser.core.errors import DataError

    y, sr = sf.read(write_speech(tmp_path / "v.wav", seconds=1.0), dtype="float32")
    sf.write(tmp_path / "one_hz.wav", y[:4000], 1)
    began = time.perf_counter()
    for load in (lambda p: decode.load(p, 16000), lambda p: list(decode.segments(p, 16000, 2.0))):
        with pytest.raises(DataError, match=r"one_hz.wav: sample rate 1 Hz is outside 1-384 kHz"):
            load(tmp_path / "one_hz.wav")
    assert time.perf_counter() - began < 5
    spiked = y.copy()
    spiked[100] = 1e30
    sf.write(tmp_path / "spike.wav", spiked, sr, subtype="FLOAT")
    with pytest.raises(DataError, match=r"spike.wav: samples up to 1e\+30 in size, where audio lies within"):
        decode.load(tmp_path / "spike.wav", 16000)
    run = _cli("predict", tmp_path / "spike.wav", tmp_path / "v.wav", "--model", "/nonexistent")
    assert "Traceback" not in run.stderr
    assert decode.duration(tmp_path / "v.wav") == pytest.approx(1.0, abs=0.01)


def test_predict_names_a_damaged_file_and_labels_the_rest(tiny_model, tmp_path):
    """The refusals above are per file: a batch goes on."""
    y, sr = sf.read(write_speech(tmp_path / "v.wav", seconds=1.5), dtype="float32")
    sf.write(tmp_path / "one_hz.wav", y[:4000], 1)
    run = _cli("predict", tmp_path / "one_hz.wav", tmp_path / "v.wav", "--model", tiny_model, "--format", "json", "-q")
    assert run.returncode == 1 and len(json.loads(run.stdout)) == 1
    assert f"error: {tmp_path / 'one_hz.wav'}: sample rate 1 Hz is outside 1-384 kHz" in run.stderr


def test_a_flac_without_its_length_is_one_line_not_an_absurd_duration(tmp_path):
    """#17: a FLAC whose STREAMINFO gives no total (allowed for streamed encodes) was refused as
    "576460752303424 s long"; libsndfile cannot decode it either, so: unknown length, and one
    `cannot decode` line naming what to do."""
    import pytest

    from ser.audio import decode
    from ser.core.errors import DataError

    y, sr = sf.read(write_speech(tmp_path / "v.wav", seconds=1.0), dtype="float32")
    sf.write(tmp_path / "s.flac", y, sr, subtype="PCM_16")
    raw = bytearray((tmp_path / "s.flac").read_bytes())
    raw[21] &= 0xF0                      # STREAMINFO's 36-bit total samples: 0 = unknown
    raw[22:26] = b"\0\0\0\0"
    (tmp_path / "s.flac").write_bytes(bytes(raw))
    assert decode.duration(tmp_path / "s.flac") is None
    with pytest.raises(DataError, match=r"s.flac: cannot decode audio \(its header gives no length"):
        decode.load(tmp_path / "s.flac", 16000)


def test_a_dc_offset_does_not_change_the_answer(tiny_model, tmp_path):
    """#6: +1 %, +5 % and +30 % of full scale added to a voice moved `angry` from 0.966 to 0.904,
    0.678 and `uncertain`; cleaning now removes DC first, in training and predict alike."""
    from ser.audio import cleaning, decode

    y, sr = sf.read(write_speech(tmp_path / "v.wav", index=0), dtype="float32")
    files = []
    for offset in (0.0, 0.01, 0.05, 0.3):
        files.append(tmp_path / f"dc{offset}.wav")
        sf.write(files[-1], y + np.float32(offset), sr, subtype="FLOAT")
    clean = [cleaning.clean(decode.load(f, 16000), 16000, 30, 0.3, -23) for f in files]
    assert all(len(c) == len(clean[0]) and np.abs(c - clean[0]).max() < 1e-5 for c in clean)
    results = predict.Predictor(tiny_model).analyse(files, grouping="file", progress=False)
    probs = np.stack([r.probabilities.mean(0) for r in results])
    assert np.abs(probs - probs[0]).max() < 1e-4


def test_a_constant_offset_alone_is_silence(tmp_path):
    """#6, its neighbour: a file holding only a DC offset is silence, not a clip."""
    import pytest

    from ser.audio import cleaning
    from ser.core.errors import DataError

    with pytest.raises(DataError, match="all silence"):
        cleaning.clean(np.full(16000, 0.2, np.float32), 16000, 30, 0.3, -23)


def test_the_voice_beside_a_louder_hum_is_the_channel_kept(tiny_model, tmp_path):
    """#7: a voice on the left and a louder mains hum on the right came back `no speech` (the
    louder channel was kept); the channel with speech is kept now, in load and segments alike."""
    from ser.audio import decode
    from ser.audio.speech import speech_seconds

    voice, sr = sf.read(write_speech(tmp_path / "voice.wav", index=1, gain_db=-12), dtype="float32")
    t = np.arange(len(voice)) / sr
    hum = (0.5 * np.sin(2 * np.pi * 50 * t) + 0.2 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)
    assert np.sum(hum.astype(np.float64) ** 2) > 10 * np.sum(voice.astype(np.float64) ** 2)
    sf.write(tmp_path / "stereo.wav", np.stack([voice, hum], axis=1), sr, subtype="FLOAT")
    sf.write(tmp_path / "swapped.wav", np.stack([hum, voice], axis=1), sr, subtype="FLOAT")
    sf.write(tmp_path / "mono.wav", voice, sr, subtype="FLOAT")
    mono = decode.load(tmp_path / "mono.wav", 16000)
    mono_pieces = [y for _, y in decode.segments(tmp_path / "mono.wav", 16000, 1.0)]
    for name in ("stereo.wav", "swapped.wav"):
        assert np.array_equal(decode.load(tmp_path / name, 16000), mono)
        # each segment chooses on its own: the voice wherever it speaks (a pause may keep the hum)
        for (_, piece), voice_piece in zip(decode.segments(tmp_path / name, 16000, 1.0), mono_pieces, strict=True):
            assert np.array_equal(piece, voice_piece) or speech_seconds(voice_piece, 16000, 0.5) < 0.3
    results = predict.Predictor(tiny_model).analyse([tmp_path / "mono.wav", tmp_path / "stereo.wav"],
                                                    grouping="file", progress=False)
    assert not results[1].no_speech
    assert np.allclose(results[0].probabilities, results[1].probabilities, atol=1e-6)


def _cut(path, keep_fraction):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep_fraction)])
    return path


def test_a_truncated_file_is_labelled_with_a_warning(tiny_model, tmp_path):
    """#11 and #12: a FLAC cut short failed ("lost sync"), and a cut MP3 or Ogg was taken as
    whole. Each is now labelled from what it holds, with a `warning:` naming the cut; the
    intact files get none."""
    y, sr = sf.read(write_speech(tmp_path / "v.wav", index=0), dtype="float32")
    files = []
    for ext, subtype in (("flac", "PCM_16"), ("mp3", "MPEG_LAYER_III"), ("ogg", "VORBIS"), ("opus", "OPUS")):
        rate = 48000 if ext == "opus" else sr
        from ser.audio.dsp import resample

        sf.write(tmp_path / f"whole.{ext}", resample(y, sr, rate), rate, subtype=subtype,
                 format="OGG" if ext == "opus" else None)
        (tmp_path / f"cut.{ext}").write_bytes((tmp_path / f"whole.{ext}").read_bytes())
        files += [tmp_path / f"whole.{ext}", _cut(tmp_path / f"cut.{ext}", 0.7)]
    run = _cli("predict", *files, "--model", tiny_model, "--format", "json", "-q")
    assert run.returncode == 0, run.stderr
    rows = {row["file"]: row for row in json.loads(run.stdout)}
    assert len(rows) == len(files) and all(row["result"] != "no speech" for row in rows.values())
    for ext in ("flac", "mp3", "ogg", "opus"):
        assert rows[str(tmp_path / f"whole.{ext}")]["warning"] is None
        assert rows[str(tmp_path / f"cut.{ext}")]["warning"].startswith("truncated:"), ext
        assert f"warning: {tmp_path / f'cut.{ext}'}: truncated:" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_truncated_flac_decodes_up_to_the_cut_in_load_and_segments(tmp_path):
    """#11: what precedes the cut is the audio, whether decoded whole or in segments."""
    from ser.audio import decode, headers

    y, sr = sf.read(write_speech(tmp_path / "v.wav", index=0), dtype="float32")
    sf.write(tmp_path / "cut.flac", y, sr, subtype="PCM_16")
    _cut(tmp_path / "cut.flac", 0.5)
    reason = headers.header_mismatch(tmp_path / "cut.flac")
    held = int(reason.rsplit(" ", 1)[1])
    whole = decode.load(tmp_path / "cut.flac", sr)
    assert 0.3 * len(y) < len(whole) == held < 0.6 * len(y)
    assert np.allclose(whole, y[:held] - y[:held].mean(), atol=1e-4)   # decoding removes the mean
    done = 0
    for start, piece in decode.segments(tmp_path / "cut.flac", sr, 0.5):
        assert start == done and np.allclose(piece, y[start:start + len(piece)] - y[start:start + len(piece)].mean(),
                                             atol=1e-4)
        done += len(piece)
    assert held <= done < 0.6 * len(y)


def test_audio_past_a_wav_header_is_said_not_skipped(tiny_model, tmp_path):
    """#12: bytes of audio after the length a WAV header declares were ignored without a word.
    predict labels the declared audio with a warning; prepare excludes the file; metadata
    chunks or zero padding after the audio are not extra data."""
    from ser.audio import headers
    from ser.data.preparation import clean_clip

    path = write_speech(tmp_path / "v.wav", index=0, seconds=2.0)
    whole = path.read_bytes()
    (tmp_path / "extra.wav").write_bytes(whole + whole[44:44 + 32000])
    (tmp_path / "listed.wav").write_bytes(whole + b"LIST" + (4).to_bytes(4, "little") + b"INFO")
    (tmp_path / "padded.wav").write_bytes(whole + bytes(64))
    frames = sf.info(path).frames
    assert headers.header_mismatch(tmp_path / "extra.wav") == (
        f"extra data: header says {frames} frames, and 32000 more bytes follow them (not decoded)")
    assert headers.header_mismatch(tmp_path / "listed.wav") is None
    assert headers.header_mismatch(tmp_path / "padded.wav") is None
    pcm, reason = clean_clip(str(tmp_path / "extra.wav"), 16000, 30, 0.3, -23)
    assert pcm is None and reason.startswith("extra data:")
    run = _cli("predict", tmp_path / "extra.wav", "--model", tiny_model, "--format", "json", "-q")
    assert run.returncode == 0, run.stderr
    [row] = json.loads(run.stdout)
    assert row["result"] != "no speech" and row["warning"].startswith("extra data:")
    assert f"warning: {tmp_path / 'extra.wav'}: extra data:" in run.stderr


def _remote_clip(corpus: str, relpath: str):
    """A real corpus clip read straight from the team's DVC remote (``../shared/dvc-remote``)."""
    import pytest
    import yaml

    from .conftest import ROOT

    remote = ROOT.parent / "shared" / "dvc-remote" / "files" / "md5"
    if not remote.is_dir():
        pytest.fail(f"{remote} not found: this test reads a real clip from the team's DVC remote")
    digest = yaml.safe_load((ROOT / "data" / "raw" / f"{corpus}.dvc").read_text())["outs"][0]["md5"]
    listing = json.loads((remote / digest[:2] / digest[2:]).read_text())
    [entry] = [e for e in listing if e["relpath"] == relpath]
    return remote / entry["md5"][:2] / entry["md5"][2:]


@pytest.mark.slow
def test_real_speech_is_checked_as_recorded_not_after_cleaning(tiny_model, tmp_path):
    """#10: on this real RAVDESS song clip Silero finds 0.06 s of speech in the silence-stripped
    clip (so the answer was `no speech`) and 3 s in the clip as recorded, which is what the
    check reads now."""
    import shutil

    from ser.audio import cleaning, decode
    from ser.audio.speech import speech_seconds

    path = tmp_path / "03-02-04-01-01-02-08.flac"
    shutil.copyfile(_remote_clip("ravdess_song", "Actor_08/03-02-04-01-01-02-08.flac"), path)
    cleaned = cleaning.clean(decode.load(path, 16000), 16000, 30, 0.3, -23)
    assert speech_seconds(cleaned, 16000, 0.5) < 0.3    # the old check's view
    [result] = predict.Predictor(tiny_model).analyse([path], grouping="file", progress=False)
    assert not result.no_speech and result.speech_s[0] > 2.0
