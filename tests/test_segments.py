"""Long recordings that read right (issue 22): segments on speech, not a fixed grid, and a
headline that summarises speech time, the same whichever grid is asked for."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ser.app.analysis import SPEECH, speech_segments
from ser.app.predict import Predictor
from ser.app.rows import json_rows, time_summary

from .conftest import SPEECH_SAMPLES, checkout_env, write_speech


def test_speech_segments_join_short_pauses_pad_and_cut_long_stretches():
    # two words 0.3 s apart are one phrase; a 2-s pause separates phrases
    assert speech_segments([(1.0, 2.0), (2.3, 3.0), (5.0, 6.0)], 10.0) == [(0.8, 3.2), (4.8, 6.2)]
    # padding stops half-way into a pause shorter than two paddings, and at the file's ends
    assert speech_segments([(0.1, 1.0), (1.3, 2.0)], 2.1, join_s=0.2) == [(0.0, pytest.approx(1.15)),
                                                                           (pytest.approx(1.15), 2.1)]
    # a 20-s stretch is cut into three equal parts no longer than 8 s
    parts = speech_segments([(0.0, 20.0)], 20.0)
    assert len(parts) == 3 and parts[0] == (0.0, pytest.approx(20 / 3)) and parts[-1][1] == 20.0
    assert all(b - a <= 8.0 for a, b in parts)
    assert speech_segments([], 5.0) == []


def _mix(path, gap_s=1.0):
    """The five real JL-Corpus clips (three speakers' emotions) one after another, with gaps."""
    from ser.audio.dsp import resample

    parts = []
    for sample in SPEECH_SAMPLES:
        y, sr = sf.read(sample, dtype="float32")
        parts += [resample(y, sr, 16000), np.zeros(int(gap_s * 16000), np.float32)]
    sf.write(path, np.concatenate(parts), 16000)
    return path


def test_speech_segments_follow_the_speech_and_the_headline_is_time(tiny_model, tmp_path):
    """On speech, every segment holds speech and none spans a gap between the clips; the
    headline's time shares add up to 1 and its emotion holds the largest share."""
    mix = _mix(tmp_path / "mix.wav")
    p = Predictor(tiny_model)
    [r] = p.analyse([mix], segment_s=SPEECH, progress=False)
    assert r.segmentation == SPEECH and len(r.segments) >= len(SPEECH_SAMPLES)
    assert all(v > 0 for v in r.speech_s)
    spans = np.array(r.speech_spans)
    for a, b in r.segments:   # a segment holds speech, padded by at most 0.2 s
        inside = spans[(spans[:, 1] > a) & (spans[:, 0] < b)]
        assert len(inside) and inside[:, 0].min() - a <= 0.2 + 1e-3 and b - inside[:, 1].max() <= 0.2 + 1e-3
    [head, *segments] = json_rows([r], p.classes, 2, 0.5, segmented=True)
    assert head["segment"] == "all" and len(segments) == len(r.segments)
    shares = head["time_shares"]
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    if head["result"] != "uncertain":
        assert head["confidence"] == shares[head["result"]] == max(v for k, v in shares.items() if k != "uncertain")
    assert all(s["confidence"] >= 0.0 for s in head["strongest"]) and len(head["strongest"]) <= 3


def test_the_headline_does_not_change_with_the_grid(tiny_model, tmp_path):
    """--segment 1, 2 or speech: the segment rows differ, the headline is the speech one."""
    mix = _mix(tmp_path / "mix.wav")
    p = Predictor(tiny_model)
    heads = []
    for segment in (1.0, 2.0, SPEECH):
        [r] = p.analyse([mix], segment_s=segment, progress=False)
        heads.append(json_rows([r], p.classes, 1, 0.5, segmented=True)[0])
    for key in ("result", "emotion", "confidence", "time_shares", "strongest", "probabilities"):
        assert heads[0][key] == heads[1][key] == heads[2][key], key


def test_a_clip_analysed_whole_has_no_time_summary(tiny_model, tmp_path):
    clip = write_speech(tmp_path / "v.wav", index=0)
    p = Predictor(tiny_model)
    [r] = p.analyse([clip], progress=False)
    assert time_summary(r, p.classes, 0.5) is None
    assert "time_shares" not in json_rows([r], p.classes, 1, 0.5, segmented=False)[0]


def test_each_file_is_segmented_on_its_own(tiny_model, tmp_path):
    """With segment_over, a short clip beside a long recording is answered whole, as alone."""
    clip = write_speech(tmp_path / "short.wav", index=0)
    mix = _mix(tmp_path / "mix.wav")
    p = Predictor(tiny_model)
    short, long = p.analyse([clip, mix], segment_s=SPEECH, grouping="file", segment_over=6.0, progress=False)
    [alone] = p.analyse([clip], grouping="file", progress=False)
    assert short.segmentation is None and long.segmentation == SPEECH
    assert np.array_equal(short.probabilities, alone.probabilities)


def test_predict_segment_speech_on_the_command_line(tiny_model, tmp_path):
    mix = _mix(tmp_path / "mix.wav")
    run = subprocess.run([sys.executable, "-m", "ser", "predict", str(mix), "--model", str(tiny_model), "--segment",
                          "speech", "--format", "json", "-q", "--plot", str(tmp_path / "t.png")],
                         capture_output=True, text=True, env=checkout_env())
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert rows[0]["segment"] == "all" and "time_shares" in rows[0] and len(rows) > 5
    assert (tmp_path / "t.png").stat().st_size > 1000
