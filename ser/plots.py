"""Figures written by the stages (matplotlib, headless)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_spectrogram_examples(out_dir: Path, table, spectrograms, cfg: dict, sample_rate: int, n_examples: int):
    """Write up to ``n_examples`` PNGs (one un-augmented clip per emotion, in class order)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.png"):
        old.unlink()
    originals = table[table.augmentation == "none"]
    duration = cfg["spectrogram"]["duration_s"]
    for emotion in sorted(originals.emotion.unique())[:n_examples]:
        row = originals[originals.emotion == emotion].index[0]
        fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
        ax.imshow(spectrograms[row] * 80 - 80, origin="lower", aspect="auto", cmap="magma",
                  extent=(0, duration, 0, spectrograms.shape[1]))
        ax.set(title=f"{emotion}: {Path(table.path[row]).name}", xlabel="time (s)", ylabel="mel band")
        fig.colorbar(ax.images[0], ax=ax, label="dB re peak")
        fig.tight_layout()
        fig.savefig(out_dir / f"{emotion}.png")
        plt.close(fig)


def save_confusion_png(path: Path, y_true, y_pred, classes, title: str):
    """Row-normalised confusion matrix as a PNG (counts annotated)."""
    n = len(classes)
    counts = np.zeros((n, n), dtype=int)
    np.add.at(counts, (np.asarray(y_true), np.asarray(y_pred)), 1)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=100)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set(xlabel="predicted", ylabel="actual", title=title)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, counts[i, j], ha="center", va="center", color="white" if rates[i, j] > 0.5 else "black")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def save_score_bars(path: Path, groups: dict, title: str):
    """Grouped horizontal bars: for each scope (a fold, a corpus) the network's UA and the
    baselines' beside it. ``groups`` maps scope -> {model name: UA}."""
    scopes = list(groups)
    models = list(next(iter(groups.values()))) if groups else []
    height = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(scopes) * max(1, len(models)) / 2 + 1.5), dpi=100)
    for j, model in enumerate(models):
        ys = np.arange(len(scopes)) + j * height
        values = [groups[s][model] for s in scopes]
        ax.barh(ys, values, height=height, label=model)
        for y, v in zip(ys, values):
            ax.text(v + 0.005, y, f"{v:.2f}", va="center", fontsize=7)
    ax.set_yticks(np.arange(len(scopes)) + height * (len(models) - 1) / 2, scopes)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="UA (unweighted average recall)", title=title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _text_color(hex_color: str) -> str:
    """Black or white, whichever reads on ``hex_color`` (by its luminance)."""
    r, g, b = (int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.6 else "white"


def save_timeline_png(path: Path, file_rows: list, classes, wave, title: str | None = None):
    """The emotion timeline of one recording (``ser.timeline``): its waveform, the answer of
    every segment (an emotion, ``uncertain`` hatched, ``no speech`` grey) and the stacked
    probabilities of every emotion per segment, all from ``file_rows`` (its JSON rows)."""
    from matplotlib.patches import Patch, Rectangle

    from .rows import NO_SPEECH, UNCERTAIN
    from .timeline import NO_SPEECH_COLOR, emotion_colors, file_segments, summary_line

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
