"""An emotion timeline of one recording: its waveform and, segment by segment, the answer and
the probability of every emotion. ``predict --plot`` draws it with matplotlib
(``ser.plots.save_timeline_png``) and ``serve``'s page draws the same thing in the browser,
both from the JSON rows of ``ser.rows`` (the numbers ``predict --format json`` prints).

Nothing here imports matplotlib: ``serve`` uses the colours without it.
"""

from dataclasses import dataclass

import numpy as np

from . import audio
from .rows import NO_SPEECH, UNCERTAIN, segment_span

# One colour per emotion, the same in the PNG and on the web page; others get tab10's.
EMOTION_COLORS = {"angry": "#d62728", "disgust": "#6b8e23", "fearful": "#9467bd", "happy": "#f2b701",
                  "neutral": "#8c8c8c", "sad": "#1f77b4", "surprised": "#ff7f0e", "calm": "#17becf"}
TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
NO_SPEECH_COLOR = "#d9d9d9"
UNCERTAIN_COLOR = "#ffffff"


def emotion_colors(classes) -> dict:
    """``class -> hex colour``: the fixed colour of a known emotion, else the next of tab10."""
    spare = iter(c for c in TAB10 if c not in {EMOTION_COLORS.get(k) for k in classes})
    return {c: EMOTION_COLORS.get(c) or next(spare, "#444444") for c in classes}


@dataclass
class Segment:
    """One column of the timeline: its span, answer and probabilities (None: no speech)."""

    start_s: float
    end_s: float
    result: str
    probabilities: dict | None


def file_segments(file_rows: list[dict], duration_s: float) -> list[Segment]:
    """The timeline's columns from one file's JSON rows: its segment rows in time order, or,
    for a file that was one segment (shorter than ``--segment``), its ``all`` row spanning
    the whole ``duration_s``."""
    spans = [r for r in file_rows if r.get("segment", "all") != "all"]
    if not spans:
        spans = [{**r, "segment": f"0-{duration_s}"} for r in file_rows[:1]]
    out = [Segment(*segment_span(r["segment"]), r["result"], r["probabilities"]) for r in spans]
    return sorted(out, key=lambda s: s.start_s)


def summary_line(file_rows: list[dict]) -> str:
    """``female1.wav: angry (0.82), 12.3 s of speech``: the file's aggregate answer."""
    row = next((r for r in file_rows if r.get("segment", "all") == "all"), file_rows[0])
    if row["result"] == NO_SPEECH:
        return f"{row['file']}: no speech ({row['speech_s']:.1f} s of speech)"
    said = row["result"] if row["result"] != UNCERTAIN else f"uncertain, most likely {row['emotion']}"
    return f"{row['file']}: {said} ({row['confidence']:.2f}), {row['speech_s']:.1f} s of speech"


@dataclass
class Envelope:
    """A waveform drawn as its per-block minimum and maximum (``times`` are block starts)."""

    times: np.ndarray
    low: np.ndarray
    high: np.ndarray
    duration_s: float


def envelope(path, sample_rate: int, blocks: int = 2000, chunk_s: float = 30.0) -> Envelope:
    """The waveform of ``path`` in about ``blocks`` min/max pairs, decoded ``chunk_s`` at a
    time (as ``predict`` decodes it: loudest channel, at ``sample_rate``), so an hour-long
    recording costs the memory of ``chunk_s`` of it."""
    total_s = audio.duration(path) or len(audio.load(path, sample_rate)) / sample_rate
    hop = max(1, int(total_s * sample_rate / blocks))
    times, low, high, end = [], [], [], 0
    for start, y in audio.segments(path, sample_rate, chunk_s):
        for i in range(0, len(y), hop):
            block = y[i:i + hop]
            times.append((start + i) / sample_rate)
            low.append(float(block.min()))
            high.append(float(block.max()))
        end = start + len(y)
    return Envelope(np.array(times), np.array(low), np.array(high), end / sample_rate)
