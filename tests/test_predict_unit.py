import subprocess
import sys

import numpy as np
import pytest

from ser.cli import collect_inputs, main
from ser.errors import DataError
from ser.predict import analyse_file, clean, segment_bounds

from .conftest import ROOT, write_tone

BUNDLE = {"sample_rate": 16000, "silence_top_db": 30,
          "featurize": {"features": ["mfcc", "rms"], "stats": ["mean"], "n_mfcc": 13, "n_mels": 32, "n_fft": 1024,
                        "hop_length": 256, "spectrogram": {"n_mels": 32, "hop_length": 512, "duration_s": 1.0}}}


def test_segment_bounds():
    assert segment_bounds(100, 10, None) == [(0, 100)]
    assert segment_bounds(100, 10, 3) == [(0, 30), (30, 60), (60, 90), (90, 100)]


def test_clean_rejects_silence_and_tiny_clips():
    with pytest.raises(DataError, match="x.wav: all silence"):
        clean(np.zeros(16000, np.float32), BUNDLE, "x.wav")
    with pytest.raises(DataError, match=r"x.wav: shorter than the analysis window \(31 ms of sound, need 64 ms\)"):
        clean(np.full(500, 0.5, np.float32), BUNDLE, "x.wav")


def test_analyse_file_reports_errors_instead_of_raising(tmp_path):
    good = write_tone(tmp_path / "good.wav", seconds=1.0, sample_rate=44100, channels=2)
    result = analyse_file(str(good), BUNDLE)
    assert result.error is None and result.features.shape == (1, 14) and result.spectrogram.shape == (1, 32, 32)
    (tmp_path / "text.wav").write_text("not audio")
    (tmp_path / "empty.wav").write_bytes(b"")
    import soundfile as sf
    sf.write(tmp_path / "silent.wav", np.zeros(16000), 16000)
    for name, message in [("text.wav", "cannot decode audio"), ("empty.wav", "cannot decode audio|no audio"),
                          ("silent.wav", "all silence"), ("missing.wav", "cannot decode audio")]:
        result = analyse_file(str(tmp_path / name), BUNDLE)
        assert result.features is None
        assert result.error.startswith(str(tmp_path / name)) and __import__("re").search(message, result.error)


def test_segments_of_a_long_recording(tmp_path):
    import soundfile as sf
    sr = 16000
    t = np.arange(sr * 2) / sr
    tone = 0.3 * np.sin(2 * np.pi * 200 * t)
    y = np.concatenate([tone, np.zeros(sr * 2), tone])  # the middle 2 s are silent
    sf.write(tmp_path / "long.wav", y, sr)
    result = analyse_file(str(tmp_path / "long.wav"), BUNDLE, segment_s=2.0)
    assert result.segments == [(0.0, 2.0), (4.0, 6.0)]
    assert result.skipped_segments == 1 and result.features.shape[0] == 2


def test_collect_inputs(tmp_path):
    write_tone(tmp_path / "a" / "b" / "one.flac")
    write_tone(tmp_path / "a" / "two.wav")
    (tmp_path / "a" / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    files, errors = collect_inputs([tmp_path / "a", tmp_path / "nope.wav", tmp_path / "empty"])
    assert [f.name for f in files] == ["one.flac", "two.wav"]
    assert errors[0].endswith("nope.wav: no such file or folder")
    assert "empty: folder has no audio files" in errors[1]


@pytest.mark.parametrize("argv, message", [
    (["predict", "x.wav", "--top-k", "0"], "error: argument --top-k: must be >= 1"),
    (["predict", "x.wav", "--segment", "-1"], "error: argument --segment: must be > 0 seconds"),
    (["predict", "x.wav", "--format", "xml"], "error: argument --format: invalid choice"),
    (["predict", "x.wav", "--model", "/nonexistent"], "error: /nonexistent/bundle.json: not found"),
])
def test_cli_errors_are_one_line(argv, message, tmp_path):
    write_tone(tmp_path / "x.wav")
    run = subprocess.run([sys.executable, "-m", "ser", *argv], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.startswith(message) and run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr


def test_evaluate_cli_checks_its_arguments(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing"), "--corpus", "tess"]) == 2
    assert "missing: no such folder" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "--corpus", "emodb"]) == 2
    assert "--corpus: unknown corpus 'emodb'" in capsys.readouterr().err
    assert ROOT.is_dir()
