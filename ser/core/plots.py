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
    """Row-normalized confusion matrix as a PNG (counts annotated)."""
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
