import io
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ser.app.analysis import analyse_file, clean_as_trained
from ser.app.cli import collect_inputs, main
from ser.app.predict import Predictor, group_key
from ser.core.errors import DataError
from ser.features.handcrafted import filterbanks

from .conftest import (
    TINY_FEATURIZE,
    analysis_settings,
    checkout_env,
    write_speech,
    write_tone,
)

SETTINGS = analysis_settings()
BANKS = filterbanks(16000, TINY_FEATURIZE)


def test_segments_are_consecutive_spans(tmp_path):
    from ser.audio import decode

    sf.write(tmp_path / "x.wav", np.full(10000, 0.1), 1000)
    assert [(s, len(y)) for s, y in decode.segments(tmp_path / "x.wav", 1000, None)] == [(0, 10000)]
    assert [(s, s + len(y)) for s, y in decode.segments(tmp_path / "x.wav", 1000, 3)] == [
        (0, 3000), (3000, 6000), (6000, 9000), (9000, 10000)]


def test_clean_is_the_training_rule():
    with pytest.raises(DataError, match="^x.wav: all silence$"):
        clean_as_trained(np.zeros(16000, np.float32), SETTINGS, "x.wav")
    # 0.1 s of sound: training drops it (prepare.min_duration_s=0.3), so predict refuses it too
    tone = (0.5 * np.sin(2 * np.pi * 200 * np.arange(8000) / 16000)).astype(np.float32)
    with pytest.raises(DataError, match=r"^x.wav: shorter than prepare.min_duration_s=0.3 after silence removal \(0.10 s"):
        clean_as_trained(tone[:1600], SETTINGS, "x.wav")
    assert len(clean_as_trained(tone, SETTINGS, "x.wav")) == 8000
    # a constant is a DC offset, not sound
    with pytest.raises(DataError, match=r"^x.wav: all silence \(a constant offset only\)$"):
        clean_as_trained(np.full(8000, 0.5, np.float32), SETTINGS, "x.wav")


def test_analyse_file_reports_errors_instead_of_raising(tmp_path):
    good = write_speech(tmp_path / "good.wav")
    result = analyse_file(str(good), SETTINGS, BANKS)
    assert result.error is None and result.analysed == [0] and result.speech_s[0] > 1.0
    assert result.inputs["features"].shape == (1, 14) and result.inputs["spectrogram"].shape == (1, 32, 32)
    (tmp_path / "text.wav").write_text("not audio")
    (tmp_path / "empty.wav").write_bytes(b"")
    for name, message in [("text.wav", "cannot decode audio"), ("empty.wav", "cannot decode audio"),
                          ("missing.wav", "cannot decode audio")]:
        result = analyse_file(str(tmp_path / name), SETTINGS, BANKS)
        assert not result.inputs
        assert result.error.startswith(str(tmp_path / name)) and re.search(message, result.error), result.error


def test_no_speech_is_a_result_not_an_emotion(tmp_path):
    """Silence, white noise, a tone and faint hiss have no voice: ``no speech``, not an error."""
    sr = 16000
    rng = np.random.default_rng(0)
    t = np.arange(3 * sr) / sr
    cases = {"silent.wav": np.zeros(3 * sr), "white.wav": 0.3 * rng.standard_normal(3 * sr),
             "tone.wav": 0.5 * np.sin(2 * np.pi * 440 * t), "hiss.wav": 0.001 * rng.standard_normal(3 * sr),
             "tones.wav": write_tone(tmp_path / "x.wav", seconds=3.0) and sf.read(tmp_path / "x.wav")[0]}
    for name, y in cases.items():
        sf.write(tmp_path / name, np.clip(y, -1, 1), sr)
        result = analyse_file(str(tmp_path / name), SETTINGS, BANKS)
        assert result.error is None and result.no_speech and not result.inputs, (name, result)
        assert result.speech_s[0] < SETTINGS.speech.min_speech_s, name


def test_segments_of_a_long_recording(tmp_path):
    sr = 16000
    speech, _ = sf.read(write_speech(tmp_path / "s.wav", index=1, sample_rate=sr, seconds=2.0))
    y = np.concatenate([speech, np.zeros(sr * 2), speech])  # the middle 2 s are silent
    sf.write(tmp_path / "long.wav", y, sr)
    result = analyse_file(str(tmp_path / "long.wav"), SETTINGS, BANKS, segment_s=2.0)
    assert result.segments == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    assert result.analysed == [0, 2] and result.speech_s[1] == 0 and result.inputs["features"].shape[0] == 2


def test_a_long_input_is_streamed_in_segments(tmp_path, monkeypatch):
    """Past LONG_INPUT_S a file is decoded and analysed one segment at a time: memory stays
    that of one segment whatever the length."""
    from ser.app import analysis
    from ser.audio import decode

    sr = 16000
    sf.write(tmp_path / "hiss.wav", 0.001 * np.random.default_rng(0).standard_normal(sr * 9), sr)
    monkeypatch.setattr(analysis, "LONG_INPUT_S", 5.0)
    monkeypatch.setattr(analysis, "AUTO_SEGMENT_S", 2.0)
    longest = []
    real = decode.segments

    def spy(path, rate, seconds):
        for start, y in real(path, rate, seconds):
            longest.append(len(y))
            yield start, y

    monkeypatch.setattr(decode, "segments", spy)
    result = analyse_file(str(tmp_path / "hiss.wav"), SETTINGS, BANKS)
    # decoded in 5 pieces of 2 s; hiss has no speech, so no segment (segments follow speech)
    assert result.no_speech and result.segments == [] and len(longest) == 5 and max(longest) == 2 * sr


def test_collect_inputs(tmp_path):
    write_tone(tmp_path / "a" / "b" / "one.flac")
    write_tone(tmp_path / "a" / "two.wav")
    (tmp_path / "a" / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "a" / "voice.m4a").write_bytes(b"x")
    files, errors, passed_over = collect_inputs([tmp_path / "a", tmp_path / "nope.wav", tmp_path / "empty"])
    assert [f.name for f in files] == ["one.flac", "two.wav"]
    assert errors[0].endswith("nope.wav: no such file or folder")
    assert "empty: folder has no audio files" in errors[1]
    assert sorted(f.name for f in passed_over) == ["notes.txt", "voice.m4a"]


def test_skipped_files_and_unreadable_folders_are_counted_and_named(tmp_path, monkeypatch, capsys):
    """``predict FOLDER`` names what it passes over: other extensions (a note, exit status
    unchanged) and subfolders it cannot read (an error: audio may be in them)."""
    import os

    from ser.app.cli import passed_over_note

    write_tone(tmp_path / "a" / "two.wav")
    (tmp_path / "a" / "voice.m4a").write_bytes(b"x")
    (tmp_path / "a" / "locked").mkdir()
    real = os.scandir

    def scandir(path="."):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    files, errors, passed_over = collect_inputs([tmp_path / "a"])
    assert [f.name for f in files] == ["two.wav"]
    assert errors == [f"{tmp_path / 'a' / 'locked'}: folder cannot be read (Permission denied)"]
    assert passed_over_note(passed_over) == (f"note: 1 file skipped, not audio by extension (1 .m4a; audio: "
                                             f".wav, .flac, .mp3, .ogg, .aiff, .aif): {tmp_path / 'a' / 'voice.m4a'}")


def test_group_keys():
    assert group_key("a/b/x.wav", "file") == "a/b/x.wav"
    assert group_key("a/b/x.wav", "folder") == "a/b"
    assert group_key("a/b/x.wav", "all") == group_key("c/y.wav", "all")


def voices(folder, n, freq=0):
    """``n`` clips of real speech, all different (5 recordings, each cut to several lengths)."""
    return [write_speech(folder / f"clip{i}.wav", index=(i + freq) % 5, seconds=1.2 + 0.15 * (i // 5)) for i in range(n)]


def test_speaker_groups_and_the_single_file_fallback(tiny_model, tmp_path):
    predictor = Predictor(tiny_model)
    one = voices(tmp_path / "one", 1, 300)
    many = voices(tmp_path / "many", 20, 150)
    results = predictor.analyse(one + many, grouping="folder", progress=False)
    assert all(r.error is None and r.probabilities.shape == (1, 7) for r in results)
    assert results[0].normalization.startswith("speaker (") and "1 clip, 9% own statistics" in results[0].normalization
    assert "20 clips, 67% own statistics" in results[1].normalization
    # Each file alone: the 20 clips now each fall back to (mostly) training statistics.
    alone = predictor.analyse(many, grouping="file", progress=False)
    assert all("1 clip, 9% own statistics" in r.normalization for r in alone)
    assert not np.allclose(alone[0].probabilities, results[1].probabilities)
    together = predictor.analyse(many, grouping="all", progress=False)
    assert np.allclose(together[0].probabilities, results[1].probabilities, atol=1e-6)


def test_segments_of_one_recording_form_one_group(tiny_model, tmp_path):
    sr = 16000
    y = np.concatenate([sf.read(write_speech(tmp_path / f"{i}.wav", index=i % 5, sample_rate=sr, seconds=1.0))[0]
                        for i in range(6)])
    sf.write(tmp_path / "long.wav", y, sr)
    [result] = Predictor(tiny_model).analyse([tmp_path / "long.wav"], segment_s=1.0, grouping="file", progress=False)
    assert len(result.segments) == 6 and "6 clips, 38% own statistics" in result.normalization


def test_backends_agree_after_normalization(tiny_model, tmp_path):
    files = voices(tmp_path / "v", 5, 200)
    onnx = Predictor(tiny_model, backend="onnx").analyse(files, progress=False)
    keras = Predictor(tiny_model, backend="keras").analyse(files, progress=False)
    assert np.abs(np.concatenate([r.probabilities for r in onnx])
                  - np.concatenate([r.probabilities for r in keras])).max() < 1e-4


def test_a_retrained_model_refuses_the_stale_export(built_model, model_copy, tmp_path):
    earlier = built_model(seed=0)               # a run, read only
    stale_onnx = (earlier / "model.onnx").read_bytes()
    first = model_copy(tmp_path / "first", seed=1)   # "dvc repro train" with a different result
    (first / "model.onnx").write_bytes(stale_onnx)
    predictor = Predictor(first, backend="onnx")
    with pytest.raises(DataError, match=r"model.onnx: its weights are not the model described by .*bundle.json .*"
                                        r"rebuild both with `dvc repro train`"):
        predictor.check()
    # and the same for a Keras file from another run
    shutil.copy(earlier / "model.keras", first / "model.keras")
    with pytest.raises(DataError, match=r"model.keras: its weights are not the model described by"):
        Predictor(first, backend="keras").check()


def test_missing_or_foreign_filterbanks_are_refused(model_copy):
    """The features' filterbanks ship beside the weights; a missing, damaged or foreign file is
    one line, never features computed with matrices the model was not trained on."""
    model = model_copy()
    banks = model / "filterbanks.npz"
    good = banks.read_bytes()
    banks.unlink()
    with pytest.raises(DataError, match=r"filterbanks.npz: not found \(rebuild the model with `dvc repro train`"):
        Predictor(model)
    banks.write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"filterbanks.npz: not a readable .npz"):
        Predictor(model)
    with np.load(io.BytesIO(good)) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["mel"] = arrays["mel"] * 1.01   # e.g. from a model with other featurize settings
    np.savez(banks, **arrays)
    with pytest.raises(DataError, match=r"filterbanks.npz: not the filterbanks .*bundle.json was trained with"):
        Predictor(model)
    banks.write_bytes(good)
    assert set(Predictor(model).filterbanks) == {"window", "mel", "chroma", "spectrogram_mel"}


def test_predict_imports_no_heavy_library(model_copy, tmp_path):
    """Labelling a file needs NumPy, scipy.fft, soundfile, soxr, openSMILE's C library and ONNX
    Runtime: librosa (with scipy.signal and numba), scikit-learn, pandas and TensorFlow are what
    made the cold start 2.7 s. matplotlib (``--plot``) and aiohttp (``serve``) are imported only
    by the commands that use them."""
    model = model_copy(inputs=("features", "spectrogram", "egemaps"))   # every branch the CLI may feed
    write_speech(tmp_path / "x.wav")
    code = ("import sys\nfrom ser.app.cli import main\ncode = main(['predict', '-q', '--model', sys.argv[1], sys.argv[2]])\n"
            "heavy = {'librosa', 'sklearn', 'pandas', 'numba', 'tensorflow', 'keras', 'opensmile', 'scipy.signal',"
            " 'matplotlib', 'aiohttp'}\n"
            "print(code, sorted((set(sys.modules) | {m.split('.')[0] for m in sys.modules}) & heavy))")
    run = subprocess.run([sys.executable, "-c", code, str(model), str(tmp_path / "x.wav")], capture_output=True,
                         text=True, env=checkout_env(), cwd=tmp_path)
    assert run.stdout.strip().splitlines()[-1] == "0 []", run.stdout + run.stderr


@pytest.mark.parametrize("content, message", [
    ("[1, 2]", "must be a JSON object, not list"),
    ('{"bundle_version": 6}', "classes is missing"),
    ('{"bundle_version": 5}', "bundle_version 5 is not 6"),
    ("{not json", "not valid JSON"),
])
def test_malformed_bundle_is_one_line(tmp_path, content, message):
    (tmp_path / "bundle.json").write_text(content)
    with pytest.raises(DataError, match=re.escape(message)):
        Predictor(tmp_path)


@pytest.mark.parametrize("argv, message", [
    (["predict", "x.wav", "--top-k", "0"], "error: argument --top-k: must be >= 1"),
    (["predict", "x.wav", "--segment", "-1"], "error: argument --segment: must be a finite number of seconds > 0"),
    (["predict", "x.wav", "--segment", "inf"], "error: argument --segment: must be a finite number of seconds > 0"),
    (["predict", "x.wav", "--segment", "nan"], "error: argument --segment: must be a finite number of seconds > 0"),
    (["predict", "x.wav", "--format", "xml"], "error: argument --format: invalid choice"),
    (["predict", "x.wav", "--speaker", "room"], "error: argument --speaker: invalid choice"),
    (["predict", "x.wav", "--model", "/nonexistent"], "error: /nonexistent/bundle.json: not found"),
])
def test_cli_errors_are_one_line(argv, message, tmp_path):
    write_tone(tmp_path / "x.wav")
    run = subprocess.run([sys.executable, "-m", "ser", *argv], cwd=tmp_path, capture_output=True, text=True,
                         env=checkout_env())
    assert run.returncode == 2
    assert run.stderr.startswith(message) and run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr


def test_cli_prints_the_normalization_it_used(tiny_model, tmp_path):
    voices(tmp_path / "spk", 3, 220)
    run = subprocess.run([sys.executable, "-m", "ser", "predict", str(tmp_path / "spk"), "--model", str(tiny_model),
                          "-q"], capture_output=True, text=True, env=checkout_env())
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == f"normalization: speaker ({tmp_path / 'spk'}: 3 clips, 23% own statistics; " \
                                         "the rest from training statistics)"
    run = subprocess.run([sys.executable, "-m", "ser", "predict", str(tmp_path / "spk" / "clip0.wav"), "--model",
                          str(tiny_model), "--format", "json"], capture_output=True, text=True, env=checkout_env())
    [row] = json.loads(run.stdout)
    assert "1 clip, 9% own statistics" in row["normalization"]


def test_evaluate_cli_checks_its_arguments(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing"), "--corpus", "tess"]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing'}: no such folder\n"
    assert main(["evaluate", str(tmp_path), "--corpus", "emodb"]) == 2
    assert "--corpus: unknown corpus 'emodb'" in capsys.readouterr().err
    (tmp_path / "out").mkdir()
    assert main(["evaluate", str(tmp_path), "--corpus", "tess", "--json", str(tmp_path / "out")]) == 2
    assert "--json: " in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "--corpus", "tess", "--json", str(tmp_path / "no" / "m.json")]) == 2
    assert capsys.readouterr().err == f"error: --json: {tmp_path / 'no' / 'm.json'}: folder {tmp_path / 'no'} does not exist\n"
    (tmp_path / "file").write_text("x")
    assert main(["evaluate", str(tmp_path), "--corpus", "tess", "--confusion", str(tmp_path / "file" / "cm")]) == 2
    assert capsys.readouterr().err == f"error: --confusion: {tmp_path / 'file' / 'cm.png'}: {tmp_path / 'file'} is not a folder\n"


def test_evaluate_when_every_clip_fails(tiny_model, tmp_path, capsys):
    folder = tmp_path / "savee" / "ALL"
    folder.mkdir(parents=True)
    for name in ("DC_a01.wav", "DC_h02.wav"):
        sf.write(folder / name, np.zeros(8000), 16000)        # silent: no clip can be scored
    (folder / "DC_n01.wav").write_text("not audio")
    assert main(["evaluate", str(tmp_path / "savee"), "--corpus", "savee", "--model", str(tiny_model), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"error: {tmp_path / 'savee'}: none of the 3 clips could be scored " \
                                           "(2 without speech, 1 failed: errors above)"


# These run in a fresh process: openSMILE aborts (malloc: invalid size) in a process that has
# built a Keras model, as this session's tiny models do.
OVERLAPPED = """
import sys
from concurrent.futures import ThreadPoolExecutor
import numpy as np
from ser.bundle.format import load_bundle, load_filterbanks
from ser.app.analysis import analyse_file

bundle = load_bundle(sys.argv[1])
banks = load_filterbanks(sys.argv[1], bundle)
alone = analyse_file(sys.argv[2], bundle.analysis, banks, segment_s=1.0)
with ThreadPoolExecutor(1) as pool:
    beside = analyse_file(sys.argv[2], bundle.analysis, banks, segment_s=1.0, pool=pool)
print(beside.segments == alone.segments, beside.speech_s == alone.speech_s, beside.analysed == alone.analysed,
      0 < len(alone.analysed) < len(alone.segments), sorted(alone.inputs),
      all(np.array_equal(beside.inputs[k], alone.inputs[k]) for k in bundle.inputs))
"""


def test_the_overlapped_path_gives_the_same_answers(model_copy, tmp_path):
    """Predictor's in-process path starts a clip's eGeMAPS on a second thread before its speech
    check (dropped when there is too little speech): the same segments, speech seconds,
    dropped segments and inputs as one thread."""
    model_copy(tmp_path / "model", inputs=("features", "spectrogram", "egemaps"))
    voice, sr = sf.read(write_speech(tmp_path / "v.wav", index=1, sample_rate=16000), dtype="float32")
    noise = 0.3 * np.random.default_rng(0).standard_normal(2 * sr).astype(np.float32)
    sf.write(tmp_path / "mixed.wav", np.concatenate([voice, np.zeros(sr, np.float32), noise, voice]), sr)
    run = subprocess.run([sys.executable, "-c", OVERLAPPED, str(tmp_path / "model"), str(tmp_path / "mixed.wav")],
                         capture_output=True, text=True, env=checkout_env())
    assert run.stdout.strip() == "True True True True ['egemaps', 'features', 'spectrogram'] True", \
        run.stdout + run.stderr


EGEMAPS_BESIDE = """
import sys
from concurrent.futures import ThreadPoolExecutor
import numpy as np, soundfile as sf
from ser.features.handcrafted import filterbanks
from ser.app.analysis import featurize, start_egemaps
from tests.conftest import analysis_settings

class Encoder:   # stands in for the bundle's ONNX encoder: [layers, 2 * dims] per clip
    def pooled(self, clip):
        return np.array([[clip.mean(), clip.std(), clip.min(), clip.max()]], np.float32)

cfg = {"features": ["rms"], "stats": ["mean"], "n_mfcc": 13, "n_mels": 32, "n_fft": 1024, "hop_length": 256,
       "spectrogram": {"n_mels": 32, "hop_length": 512, "duration_s": 1.0}, "n_examples": 0}
bundle = analysis_settings(inputs=["encoder", "egemaps"], featurize=cfg, encoder={"layers": [0], "pooling": "mean_std"})
banks = filterbanks(16000, cfg)
clip, _ = sf.read(sys.argv[1], dtype="float32")
alone = featurize(clip, bundle, banks, Encoder())
with ThreadPoolExecutor(1) as pool:
    beside = featurize(clip, bundle, banks, Encoder(), start_egemaps(clip, bundle, pool))
print(list(beside), beside["egemaps"].shape, all(np.array_equal(beside[k], alone[k]) for k in alone))
"""


def test_egemaps_beside_the_encoder_gives_the_same_inputs(tmp_path):
    clip = write_speech(tmp_path / "v.wav", sample_rate=16000)
    run = subprocess.run([sys.executable, "-c", EGEMAPS_BESIDE, str(clip)], capture_output=True, text=True,
                         env=checkout_env())
    assert run.stdout.strip() == "['encoder', 'egemaps'] (88,) True", run.stdout + run.stderr
