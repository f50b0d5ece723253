"""scripts/summary.py: the short report that ends scripts/run.sh."""

import importlib.util

from .conftest import ROOT

spec = importlib.util.spec_from_file_location("summary", ROOT / "scripts" / "summary.py")
summary = importlib.util.module_from_spec(spec)
spec.loader.exec_module(summary)


def test_summary_reports_cv_baseline_margin_and_loco():
    cv = {"folds": 5, "ua": {"mean": 0.61, "std": 0.04}, "wa": {"mean": 0.62, "std": 0.05},
          "macro_f1": {"mean": 0.6, "std": 0.05}, "baseline_ua": {"mean": 0.43, "std": 0.06},
          "per_corpus": {"savee": {"ua": 0.4, "baseline_ua": 0.3}}}
    loco = {"savee": {"ua": 0.3, "baseline_ua": 0.2, "clips": 294}, "tess": {"ua": 0.5, "baseline_ua": 0.4, "clips": 10}}
    train = {"train_clips": 100, "speakers": 25, "epochs": 20}
    text = summary.summary(cv, loco, train)
    assert "UA 0.610 ± 0.040   WA 0.620 ± 0.050" in text
    assert "UA 0.430 ± 0.060   margin +0.180" in text
    assert "    savee            0.400   baseline 0.300" in text
    assert "  mean             0.400   baseline 0.300" in text
    assert len(text.splitlines()) < 16 and max(len(line) for line in text.splitlines()) < 130


def test_summary_says_what_has_not_run():
    text = summary.summary(None, None, {"train_clips": 1, "speakers": 1, "epochs": 1})
    assert "Cross-validation: not run yet (`dvc repro cv`)." in text
    assert "Leave one corpus out: not run yet" in text


def test_summary_has_the_reference_curve():
    by = {k: {"ua": {"mean": 0.5 + i / 10, "std": 0.0}} for i, k in enumerate(("0", "3", "all"))}
    cv = {"folds": 5, "ua": {"mean": 0.7, "std": 0.04}, "wa": {"mean": 0.7, "std": 0.05},
          "macro_f1": {"mean": 0.6, "std": 0.05}, "baseline_ua": {"mean": 0.43, "std": 0.06}, "per_corpus": {},
          "by_reference": {"network": by}}
    loco = {c: {"ua": 0.5, "baseline_ua": 0.2, "clips": 9,
                "by_reference": {"network": {"0": {"ua": 0.3}, "3": {"ua": u}, "all": {"ua": 0.6}}}}
            for c, u in (("savee", 0.4), ("tess", 0.5))}
    text = summary.summary(cv, loco, None)
    assert "  k=0 0.500/0.300  k=3 0.600/0.450  k=all 0.700/0.600" in text.splitlines()
