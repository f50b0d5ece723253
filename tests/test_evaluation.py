import numpy as np
import pytest

from ser.model.evaluation import confusion_table, report, summary


def test_summary_on_a_known_case():
    y_true = [0, 0, 0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 1, 2, 0]
    out = summary(y_true, y_pred, 3)
    assert out["accuracy"] == pytest.approx(6 / 8)
    assert out["ua"] == pytest.approx((3 / 4 + 1 + 1 / 2) / 3)
    assert out["wa"] == pytest.approx(out["accuracy"])
    assert out["clips"] == 8


def test_report_per_class_and_per_corpus():
    classes = ["a", "b"]
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 1, 1, 1])
    out = report(y_true, y_pred, classes, groups=["x", "x", "y", "y"])
    assert out["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert out["per_corpus"]["y"]["accuracy"] == 1.0
    assert out["per_corpus"]["x"]["accuracy"] == 0.5


def test_confusion_table_uses_names():
    table = confusion_table([0, 1], [1, 1], ["angry", "sad"])
    assert table.to_dict("list") == {"actual": ["angry", "sad"], "predicted": ["sad", "sad"]}
