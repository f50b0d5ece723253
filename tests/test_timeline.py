"""``predict --segment S --plot FILE``: the emotion timeline of a long recording, drawn from the
very rows ``--format json`` prints."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ser.app import cli, timeline
from ser.app.rows import NO_SPEECH, segment_span
from ser.app.timeline import emotion_colors, envelope, file_segments, summary_line
from ser.core import plots

from .conftest import checkout_env, write_speech

SR = 16000


@pytest.fixture
def talk(tmp_path):
    """Real speech, 3 s of silence, real speech again (16 kHz): about 9.4 s."""
    y, sr = sf.read(write_speech(tmp_path / "clip.wav", index=1, sample_rate=SR), dtype="float32")
    path = tmp_path / "talk.wav"
    sf.write(path, np.concatenate([y, np.zeros(3 * sr, np.float32), y]), sr)
    return path


def test_the_plot_is_drawn_from_the_rows_json_prints(tiny_model, talk, tmp_path, monkeypatch, capsys):
    drawn = {}
    real = timeline.save_timeline_png

    def spy(path, file_rows, classes, wave, title=None):
        drawn.update(rows=file_rows, wave=wave)
        real(path, file_rows, classes, wave, title)

    monkeypatch.setattr(timeline, "save_timeline_png", spy)
    out = tmp_path / "talk.png"
    code = cli.main(["predict", str(talk), "--model", str(tiny_model), "--segment", "2", "--plot", str(out),
                     "--format", "json", "--top-k", "7", "-q"])
    captured = capsys.readouterr()
    assert code == 0 and f"timeline: {out}" in captured.err
    printed = json.loads(captured.out)
    assert json.loads(json.dumps(drawn["rows"])) == printed   # exactly the numbers --format json prints
    segments = file_segments(printed, drawn["wave"].duration_s)
    assert [(s.start_s, s.end_s) for s in segments] == [segment_span(r["segment"]) for r in printed[1:]]
    assert NO_SPEECH in [s.result for s in segments] and segments[0].result != NO_SPEECH
    assert drawn["wave"].duration_s == pytest.approx(sf.info(talk).duration, abs=1e-3)
    image = plots.plt.imread(out)
    assert image.shape[:2] == (540, 1000)
    colours = {tuple(np.round(px[:3] * 255).astype(int)) for px in image.reshape(-1, image.shape[2])[::7]}
    assert (217, 217, 217) in colours    # the no-speech grey


def test_a_recording_shorter_than_a_segment_is_one_column(tmp_path):
    rows = [{"file": "a.wav", "segment": "all", "result": "sad", "emotion": "sad", "confidence": 0.7, "speech_s": 1.2,
             "probabilities": {"sad": 0.7, "angry": 0.3}}]
    [segment] = file_segments(rows, 1.5)
    assert (segment.start_s, segment.end_s, segment.result) == (0.0, 1.5, "sad")
    assert summary_line(rows) == "a.wav: sad (0.70), 1.2 s of speech"
    assert summary_line([{**rows[0], "result": "uncertain"}]) == "a.wav: uncertain, most likely sad (0.70), 1.2 s of speech"
    timed = {**rows[0], "result": "uncertain", "time_shares": {"uncertain": 0.84, "angry": 0.16}}
    assert summary_line([timed]) == "a.wav: uncertain 84%, angry 16% of 1.2 s of speech"


def test_every_emotion_has_its_own_colour():
    colours = emotion_colors(["angry", "sad", "boredom", "contempt"])
    assert colours["angry"] == "#d62728" and colours["sad"] == "#1f77b4"
    assert len(set(colours.values())) == 4


def test_the_envelope_streams_a_long_file(tmp_path):
    y = np.sin(np.arange(70 * SR) / 50).astype(np.float32) * np.linspace(0, 1, 70 * SR, dtype=np.float32)
    sf.write(tmp_path / "long.wav", y, SR, subtype="FLOAT")
    wave = envelope(tmp_path / "long.wav", SR, blocks=700, chunk_s=30)
    assert wave.duration_s == pytest.approx(70.0) and 700 <= len(wave.times) <= 703
    assert wave.high[-1] == pytest.approx(1.0, abs=0.01) and wave.low[0] == pytest.approx(0.0, abs=0.01)
    assert np.all(np.diff(wave.times) > 0)


@pytest.mark.parametrize("extra, message", [
    (["--plot", "t.png"], "error: --plot: give --segment too (speech, or the timeline's step in seconds"),
    (["x.wav", "--plot", "t.png", "--segment", "2"], "error: --plot: draws the timeline of one recording, got 2 files"),
    (["--plot", "t.gif", "--segment", "2"], "error: --plot: t.gif: name a .png, .svg, .pdf file"),
    (["--plot", "nowhere/t.png", "--segment", "2"], "error: --plot: nowhere/t.png: folder nowhere does not exist"),
])
def test_plot_mistakes_are_one_line_before_any_work(tiny_model, tmp_path, extra, message):
    write_speech(tmp_path / "v.wav")
    write_speech(tmp_path / "x.wav")
    run = subprocess.run([sys.executable, "-m", "ser", "predict", "v.wav", *extra, "--model", str(tiny_model)],
                         cwd=tmp_path, capture_output=True, text=True, env=checkout_env())
    assert run.returncode == 2 and run.stderr.startswith(message) and len(run.stderr.splitlines()) == 1
    assert not list(tmp_path.glob("t.*"))
