"""Issue 21 (a hostile audit), the problems fixed so far: each test failed before its fix."""

import csv
import io
import json
import subprocess
import sys

import numpy as np
import soundfile as sf

from ser import predict
from ser.rows import json_rows

from .conftest import checkout_env, write_speech


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ser", *map(str, args)], capture_output=True, text=True,
                          env=checkout_env(), cwd=cwd)


def test_a_long_recording_without_segment_is_one_row(tiny_model, tmp_path, monkeypatch):
    """#5: the pieces a long file is cut into for memory are not rows of their own."""
    y, sr = sf.read(write_speech(tmp_path / "one.wav", index=0), dtype="float32")
    sf.write(tmp_path / "long.wav", np.concatenate([y] * 4), sr)
    monkeypatch.setattr(predict, "LONG_INPUT_S", 3.0)
    monkeypatch.setattr(predict, "AUTO_SEGMENT_S", 2.0)
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

    from ser.config import load_params
    from ser.errors import ConfigError

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

    from ser.errors import ConfigError
    from ser.parallel import n_jobs

    for bad in ("abc", "0", "-2", "1.5", "²"):
        monkeypatch.setenv("SER_JOBS", bad)
        with pytest.raises(ConfigError, match=r"^SER_JOBS: must be a whole number of worker processes from 1 to 4096"):
            n_jobs()
    monkeypatch.setenv("SER_JOBS", "3")
    assert n_jobs() == 3


def test_a_bundle_with_a_huge_number_is_one_line(tmp_path):
    """#13: a 5001-digit number in bundle.json was a ValueError traceback."""
    import pytest

    from ser.bundle import load_bundle
    from ser.errors import DataError

    (tmp_path / "bundle.json").write_text('{"bundle_version": ' + "9" * 5001 + "}")
    with pytest.raises(DataError, match=r"bundle.json: not a bundle \("):
        load_bundle(tmp_path)


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

    from ser import audio
    from ser.errors import DataError

    y, sr = sf.read(write_speech(tmp_path / "v.wav", seconds=1.0), dtype="float32")
    sf.write(tmp_path / "one_hz.wav", y[:4000], 1)
    began = time.perf_counter()
    for load in (lambda p: audio.load(p, 16000), lambda p: list(audio.segments(p, 16000, 2.0))):
        with pytest.raises(DataError, match=r"one_hz.wav: sample rate 1 Hz is outside 1-384 kHz"):
            load(tmp_path / "one_hz.wav")
    assert time.perf_counter() - began < 5
    spiked = y.copy()
    spiked[100] = 1e30
    sf.write(tmp_path / "spike.wav", spiked, sr, subtype="FLOAT")
    with pytest.raises(DataError, match=r"spike.wav: samples up to 1e\+30 in size, where audio lies within"):
        audio.load(tmp_path / "spike.wav", 16000)
    run = _cli("predict", tmp_path / "spike.wav", tmp_path / "v.wav", "--model", "/nonexistent")
    assert "Traceback" not in run.stderr
    assert audio.duration(tmp_path / "v.wav") == pytest.approx(1.0, abs=0.01)


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

    from ser import audio
    from ser.errors import DataError

    y, sr = sf.read(write_speech(tmp_path / "v.wav", seconds=1.0), dtype="float32")
    sf.write(tmp_path / "s.flac", y, sr, subtype="PCM_16")
    raw = bytearray((tmp_path / "s.flac").read_bytes())
    raw[21] &= 0xF0                      # STREAMINFO's 36-bit total samples: 0 = unknown
    raw[22:26] = b"\0\0\0\0"
    (tmp_path / "s.flac").write_bytes(bytes(raw))
    assert audio.duration(tmp_path / "s.flac") is None
    with pytest.raises(DataError, match=r"s.flac: cannot decode audio \(its header gives no length"):
        audio.load(tmp_path / "s.flac", 16000)
