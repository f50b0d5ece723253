"""An emotion timeline of one recording: its waveform and, segment by segment, the answer and
the probability of every emotion. ``predict --plot`` draws it with matplotlib
(``save_timeline_png``) and ``serve``'s page draws the same thing in the browser, both from the
JSON rows of ``ser.app.rows`` (the numbers ``predict --format json`` prints).

matplotlib is imported only inside ``save_timeline_png``: ``serve`` uses the colours without it.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser.app.rows import NO_SPEECH, UNCERTAIN, segment_span
from ser.audio import decode

# One colour per emotion, the same in the PNG and on the web page; others get tab10's.
EMOTION_COLORS = {"angry": "#d62728", "disgust": "#6b8e23", "fearful": "#9467bd", "happy": "#f2b701",
                  "neutral": "#8c8c8c", "sad": "#1f77b4", "surprised": "#ff7f0e", "calm": "#17becf"}
TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
NO_SPEECH_COLOR = "#d9d9d9"


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
    """``female1.wav: angry (0.82), 12.3 s of speech``: the file's aggregate answer (for a
    recording in segments, ``talk.wav: uncertain 84%, angry 16% of 9.5 s of speech``)."""
    row = next((r for r in file_rows if r.get("segment", "all") == "all"), file_rows[0])
    if row["result"] == NO_SPEECH:
        return f"{row['file']}: no speech ({row['speech_s']:.1f} s of speech)"
    if row.get("time_shares"):   # in segments: the share of the speech time each answer holds
        shares = ", ".join(f"{c} {share:.0%}" for c, share in row["time_shares"].items())
        return f"{row['file']}: {shares} of {row['speech_s']:.1f} s of speech"
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
    time (as ``predict`` decodes it: its voice channel, at ``sample_rate``), so an hour-long
    recording costs the memory of ``chunk_s`` of it."""
    total_s = decode.duration(path) or len(decode.load(path, sample_rate)) / sample_rate
    hop = max(1, int(total_s * sample_rate / blocks))
    times, low, high, end = [], [], [], 0
    for start, y in decode.segments(path, sample_rate, chunk_s):
        for i in range(0, len(y), hop):
            block = y[i:i + hop]
            times.append((start + i) / sample_rate)
            low.append(float(block.min()))
            high.append(float(block.max()))
        end = start + len(y)
    return Envelope(np.array(times), np.array(low), np.array(high), end / sample_rate)


def _text_color(hex_color: str) -> str:
    """Black or white, whichever reads on ``hex_color`` (by its luminance)."""
    r, g, b = (int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.6 else "white"


def save_timeline_png(path: Path, file_rows: list, classes, wave, title: str | None = None):
    """The emotion timeline of one recording: its waveform, the answer of
    every segment (an emotion, ``uncertain`` hatched, ``no speech`` grey) and the stacked
    probabilities of every emotion per segment, all from ``file_rows`` (its JSON rows)."""
    from matplotlib.patches import Patch, Rectangle

    from ser.core.plots import (
        plt,  # matplotlib set up for files (Agg), imported only when plotting
    )

    colors = emotion_colors(classes)
    segments = file_segments(file_rows, wave.duration_s)
    end = max([wave.duration_s] + [s.end_s for s in segments])
    fig, (ax_wave, ax_answer, ax_prob) = plt.subplots(
        3, 1, figsize=(10, 5.4), dpi=100, sharex=True, gridspec_kw={"height_ratios": [1.2, 0.45, 2.2], "hspace": 0.08})
    peak = max(1e-6, float(np.max(np.abs(np.concatenate([wave.low, wave.high])))) if len(wave.times) else 1.0)
    ax_wave.fill_between(wave.times, wave.low / peak, wave.high / peak, color="#444444", linewidth=0, step="post")
    ax_wave.set(ylim=(-1.05, 1.05), yticks=[], ylabel="waveform")
    ax_wave.set_title(title or summary_line(file_rows), fontsize=11, loc="left")
    width_px = fig.get_figwidth() * fig.dpi * 0.8 / end   # pixels per second, about
    for s in segments:
        span = s.end_s - s.start_s
        for ax in (ax_wave, ax_answer, ax_prob):
            ax.axvline(s.start_s, color="white" if ax is ax_prob else "#bbbbbb", linewidth=0.6, zorder=3)
        if s.result == NO_SPEECH:
            ax_wave.axvspan(s.start_s, s.end_s, color=NO_SPEECH_COLOR, alpha=0.6, linewidth=0, zorder=0)
            face, hatch = NO_SPEECH_COLOR, None
            ax_prob.add_patch(Rectangle((s.start_s, 0), span, 1, facecolor=NO_SPEECH_COLOR, linewidth=0))
        else:
            face, hatch = ("white", "////") if s.result == UNCERTAIN else (colors[s.result], None)
            bottom = 0.0
            for c in classes:
                p = s.probabilities[c]
                ax_prob.bar(s.start_s, p, width=span, bottom=bottom, align="edge", color=colors[c], linewidth=0)
                bottom += p
        ax_answer.add_patch(Rectangle((s.start_s, 0), span, 1, facecolor=face, hatch=hatch, edgecolor="#999999",
                                      linewidth=0.5))
        label = {NO_SPEECH: "no speech", UNCERTAIN: "uncertain"}.get(s.result, s.result)
        vertical = span * width_px < 5 * len(label) + 4   # about 5 px a character at 7 pt
        ax_answer.text(s.start_s + span / 2, 0.5, label, ha="center", va="center", fontsize=7,
                       rotation=90 if vertical else 0, color=_text_color(face) if face != "white" else "black",
                       clip_on=True)
    ax_answer.set(ylim=(0, 1), yticks=[])
    ax_answer.set_ylabel("answer", rotation=0, ha="right", va="center")
    ax_prob.set(xlim=(0, end), ylim=(0, 1), xlabel="time (s)", ylabel="probability")
    handles = [Patch(color=colors[c], label=c) for c in classes]
    handles += [Patch(facecolor="white", edgecolor="#999999", hatch="////", label="uncertain"),
                Patch(facecolor=NO_SPEECH_COLOR, edgecolor="#999999", label="no speech")]
    ax_prob.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.subplots_adjust(left=0.09, right=0.86, top=0.93, bottom=0.1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
