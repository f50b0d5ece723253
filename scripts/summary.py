"""Print a short summary of what the last `dvc repro` measured (the end of scripts/run.sh).

Reads metrics/cv.json, metrics/loco.json and metrics/train.json; `dvc metrics show` still
gives every number.
"""

import json
import sys
from pathlib import Path


def _load(path):
    """The metrics file's contents, or None when that stage has not run yet."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as err:
        raise SystemExit(f"error: {path}: not valid JSON ({err.msg})") from None


def summary(cv: dict | None, loco: dict | None, train: dict | None) -> str:
    """A dozen lines: CV mean ± std next to the baseline, LOCO per corpus, where the model and plots are."""
    def ms(d):
        return f"{d['mean']:.3f} ± {d['std']:.3f}"

    lines = []
    if cv is None:
        lines.append("Cross-validation: not run yet (`dvc repro cv`).")
    else:
        margin = cv["ua"]["mean"] - cv["baseline_ua"]["mean"]
        lines += [f"Speaker-grouped {cv['folds']}-fold cross-validation (no speaker in a fold's training and test data):",
                  f"  UA {ms(cv['ua'])}   WA {ms(cv['wa'])}   macro-F1 {ms(cv['macro_f1'])}   (mean ± std over folds)",
                  f"  eGeMAPS + SVM baseline on the same folds: UA {ms(cv['baseline_ua'])}   margin {margin:+.3f}",
                  *([f"  each test file normalized alone (as `predict --speaker file`): UA {ms(cv['ua_file'])}"]
                    if "ua_file" in cv else []),
                  "  per corpus (pooled out-of-fold):"]
        lines += [f"    {c:<16} {v['ua']:.3f}   baseline {v['baseline_ua']:.3f}" for c, v in cv["per_corpus"].items()]
    lines.append("Leave one corpus out (UA on the held-out corpus):" if loco is not None
                 else "Leave one corpus out: not run yet (`dvc repro loco`).")
    for corpus, v in (loco or {}).items():
        alone = f"   each file alone {v['ua_file']:.3f}" if "ua_file" in v else ""
        lines.append(f"  {corpus:<16} {v['ua']:.3f}   baseline {v['baseline_ua']:.3f}{alone}   ({v['clips']} clips)")
    if loco:
        mean = sum(v["ua"] for v in loco.values()) / len(loco)
        base = sum(v["baseline_ua"] for v in loco.values()) / len(loco)
        lines.append(f"  {'mean':<16} {mean:.3f}   baseline {base:.3f}")
    if cv is not None and loco and "by_reference" in cv:
        sizes = [k for k in cv["by_reference"]["network"]]
        loco_mean = {k: sum(v["by_reference"]["network"][k]["ua"] for v in loco.values()) / len(loco) for k in sizes}
        lines.append("UA by reference size (k other clips of the voice; 0 = a lone file), CV / LOCO mean:")
        lines.append("  " + "  ".join(f"k={k} {cv['by_reference']['network'][k]['ua']['mean']:.3f}/{loco_mean[k]:.3f}"
                                      for k in sizes))
    if train is not None:
        lines.append(f"Shipped model: models/ ({train['train_clips']} clips of {train['speakers']} speakers, "
                     f"{train['epochs']} epochs); label files with `python -m ser predict PATH`.")
    lines += ["Plots: plots/cv_ua.png, plots/loco_ua.png, plots/cv_confusion.csv;",
              "  `dvc plots show` writes them all to dvc_plots/index.html. Every number: `dvc metrics show`."]
    return "\n".join(lines)


def main():
    print(summary(_load("metrics/cv.json"), _load("metrics/loco.json"), _load("metrics/train.json")))


if __name__ == "__main__":
    sys.exit(main())
