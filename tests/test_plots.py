"""The stages' figures (``ser.core.plots``): PNGs of the size asked for, one per emotion for the
spectrogram examples, written headless."""

import matplotlib.image
import numpy as np
import pandas as pd

from ser.core.plots import save_confusion_png, save_score_bars, save_spectrogram_examples


def png_shape(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(path).shape


def test_confusion_png(tmp_path):
    path = tmp_path / "plots" / "cv_confusion.png"   # its folder is made
    save_confusion_png(path, [0, 0, 1, 2], [0, 1, 1, 2], ["angry", "happy", "sad"], "cv")
    assert png_shape(path)[:2] == (550, 650)          # figsize (6.5, 5.5) at 100 dpi


def test_score_bars(tmp_path):
    groups = {"fold 0": {"network": 0.6, "svm": 0.5}, "fold 1": {"network": 0.7, "svm": 0.4}}
    save_score_bars(tmp_path / "ua.png", groups, "UA per fold")
    height, width = png_shape(tmp_path / "ua.png")[:2]
    assert width == 700 and height == round(100 * (0.55 * 2 * 2 / 2 + 1.5))   # grows with scopes x models


def test_spectrogram_examples_one_original_per_emotion(tmp_path):
    out = tmp_path / "examples"
    out.mkdir()
    (out / "stale.png").write_bytes(b"old")                    # from a previous run: removed
    table = pd.DataFrame({"path": [f"c/{i}.wav" for i in range(5)],
                          "emotion": ["sad", "angry", "angry", "happy", "sad"],
                          "augmentation": ["none", "pitch", "none", "none", "none"]})
    spectrograms = np.random.default_rng(0).random((5, 16, 20)).astype(np.float32)
    save_spectrogram_examples(out, table, spectrograms, {"spectrogram": {"duration_s": 1.0}}, 16000, n_examples=2)
    assert sorted(p.name for p in out.iterdir()) == ["angry.png", "happy.png"]   # class order, first two
    assert png_shape(out / "angry.png")[:2] == (300, 500)
