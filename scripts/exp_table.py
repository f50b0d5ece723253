"""Regenerate the ablation table of docs/ablations.md from `dvc exp show --json`.

Each row is one experiment (or a commit): which params it changes relative to the commit it
was run from, its speaker-grouped CV UA (mean ± std over folds) next to the eGeMAPS + SVM
baseline on the same folds, and its leave-one-corpus-out UA per held-out corpus. Wall times
come from `metrics/experiment_times.json` (written by scripts/experiments.sh). With --write,
the table replaces the block between `<!-- exp-tables:start -->` and `<!-- exp-tables:end -->`
in docs/ablations.md (TABLE_PAGE).
"""

import argparse
import json
import re
import subprocess
from pathlib import Path

START, END = "<!-- exp-tables:start -->", "<!-- exp-tables:end -->"
TIMES = Path("metrics/experiment_times.json")
TABLE_PAGE = Path("docs/ablations.md")   # the page whose START/END block --write replaces


def _flat(tree, prefix=""):
    out = {}
    for key, value in (tree or {}).items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _entry(entry):
    data = entry.get("data") or {}
    params = (data.get("params") or {}).get("params.yaml", {}).get("data")
    metrics = {k: v.get("data", {}) for k, v in (data.get("metrics") or {}).items()}
    return params, metrics


def _runs(shown):
    """Yield (name, params, metrics, baseline params) for the workspace, each commit and each
    finished experiment; an experiment's baseline is the commit it was run from."""
    for rev in shown:
        # queued, running and failed experiments show their parent's metrics: leave them out
        label = rev.get("name") or (rev.get("rev", "") if rev.get("rev") == "workspace" else rev.get("rev", "")[:7])
        params, metrics = _entry(rev)
        if params and metrics.get("metrics/cv.json"):
            yield label, params, metrics, None
        for exp in rev.get("experiments") or []:
            if (exp.get("executor") or {}).get("state", "success") != "success":
                continue
            exp_params, exp_metrics = _entry(exp["revs"][0])
            if exp_params and exp_metrics.get("metrics/cv.json"):
                yield exp.get("name"), exp_params, exp_metrics, params


def _fmt(x):
    return f"{x:.3f}" if isinstance(x, (int, float)) else "–"


def _change(params, reference) -> str:
    if reference is None:
        return "(a committed configuration: its own `dvc repro`)"
    flat, ref = _flat(params), _flat(reference)
    diff = [f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in sorted(flat.items()) if ref.get(k) != v]
    return ", ".join(diff) or "(same as its baseline)"


def tables(shown, times=None) -> str:
    times = times or {}
    runs = list(_runs(shown))
    if not runs:
        return "_No experiment has metrics/cv.json yet: run `bash scripts/experiments.sh`._\n"
    def key(params, metrics):
        return json.dumps([params, metrics.get("metrics/cv.json")], sort_keys=True)

    commits = {key(p, m) for name, p, m, b in runs if b is None and name != "workspace"}
    seen, rows = set(), []
    for name, params, metrics, baseline in runs:
        if baseline is None:   # a commit (or the workspace, when it only repeats a commit) once
            k = key(params, metrics)
            if k in seen or (name == "workspace" and k in commits):
                continue
            seen.add(k)
        rows.append((name, params, metrics, baseline))
    corpora = sorted({c for _, _, m, _ in rows for c in m.get("metrics/loco.json", {})})
    out = ["**Ablations** (speaker-grouped 5-fold CV and leave-one-corpus-out; UA = unweighted average recall, "
           "7 classes, chance 0.143; baseline = eGeMAPS + RBF SVM on the same folds)\n",
           "| experiment | change from the commit it ran from | CV UA (mean ± std) | CV baseline UA | margin | "
           "LOCO mean UA | LOCO baseline | " + " | ".join(f"LOCO {c}" for c in corpora)
           + " | CV UA, each file alone | LOCO UA, each file alone | wall time |",
           "|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(corpora) + "---:|---:|---:|"]
    for name, params, metrics, baseline in rows:
        cv, loco = metrics["metrics/cv.json"], metrics.get("metrics/loco.json", {})
        ua, base = cv.get("ua", {}), cv.get("baseline_ua", {})
        margin = ua.get("mean", 0) - base.get("mean", 0) if "mean" in ua and "mean" in base else None
        loco_ua = [loco[c]["ua"] for c in corpora if c in loco]
        loco_base = [loco[c]["baseline_ua"] for c in corpora if c in loco]
        # ua_file: every test clip normalized alone (predict on a single file); older runs lack it
        loco_file = [loco[c]["ua_file"] for c in corpora if "ua_file" in loco.get(c, {})]
        wall = times.get(name)
        out.append(f"| {name} | {_change(params, baseline)} | {_fmt(ua.get('mean'))} ± {_fmt(ua.get('std'))} | "
                   f"{_fmt(base.get('mean'))} | {'–' if margin is None else f'{margin:+.3f}'} | "
                   f"{_fmt(sum(loco_ua) / len(loco_ua) if loco_ua else None)} | "
                   f"{_fmt(sum(loco_base) / len(loco_base) if loco_base else None)} | "
                   + " | ".join(_fmt(loco.get(c, {}).get("ua")) for c in corpora)
                   + f" | {_fmt(cv.get('ua_file', {}).get('mean'))} | "
                   f"{_fmt(sum(loco_file) / len(loco_file) if loco_file else None)}"
                   + f" | {'–' if wall is None else f'{wall / 60:.1f} min'} |")
    return "\n".join(out) + "\n" + reference_table(rows, corpora, times)


REFERENCE_SIZES = ("0", "1", "3", "5", "all")


def label(model: str, params: dict) -> str:
    """``network`` holds the run's own model: name it (``train.model``); ``linear`` is the probe."""
    return f"model: {(params.get('train') or {}).get('model', 'network')}" if model == "network" else "linear probe"


def reference_table(rows, corpora, times) -> str:
    """The runs that measured ``by_reference`` (issue 20): UA when each test clip is normalized
    with k other clips of its speaker, in CV and on average over the unseen corpora, for the
    network and the linear probe, and the lone files' confident answers on the worst unseen corpus."""
    rows = [r for r in rows if "by_reference" in r[2]["metrics/cv.json"]]
    if not rows:
        return ""
    head = " | ".join(f"CV k={k}" for k in REFERENCE_SIZES) + " | " + " | ".join(f"LOCO k={k}" for k in REFERENCE_SIZES)
    out = ["\n**By reference size** (UA with each test clip normalized with k *other* clips of its speaker, mean of "
           "the seeded draws; k=0: the file alone, all: the whole speaker; the run's model (`train.model`), then the "
           "linear probe on the same inputs; last: accuracy of the lone-file answers not `uncertain` on the worst "
           "unseen corpus, and "
           "their coverage there)\n",
           "| experiment | change | model | " + head + " | lone files, worst corpus: confident accuracy (coverage) |",
           "|---|---|---|" + "---:|" * (2 * len(REFERENCE_SIZES)) + "---|"]
    for name, params, metrics, baseline in rows:
        cv, loco = metrics["metrics/cv.json"]["by_reference"], metrics.get("metrics/loco.json", {})
        for model in ("network", "linear"):
            cells = [_fmt(cv[model].get(k, {}).get("ua", {}).get("mean")) for k in REFERENCE_SIZES]
            for k in REFERENCE_SIZES:
                values = [loco[c]["by_reference"][model][k]["ua"] for c in corpora
                          if k in loco.get(c, {}).get("by_reference", {}).get(model, {})]
                cells.append(_fmt(sum(values) / len(values) if values else None))
            lone = [(loco[c]["by_reference"][model]["0"].get("confident_accuracy"),
                     loco[c]["by_reference"][model]["0"].get("coverage")) for c in corpora
                    if "0" in loco.get(c, {}).get("by_reference", {}).get(model, {})]
            lone = [x for x in lone if x[0] is not None]
            worst = min(lone) if lone else None
            out.append(f"| {name if model == 'network' else ''} | {_change(params, baseline) if model == 'network' else ''} "
                       f"| {label(model, params)} | " + " | ".join(cells)
                       + f" | {'–' if worst is None else f'{worst[0]:.3f} ({worst[1]:.0%})'} |")
    return "\n".join(out) + "\n"


def merge_snapshots(shown: list, older: list) -> list:
    """``shown`` plus what only ``older`` (an earlier ``dvc exp show --json`` snapshot) has:
    commits it lists and experiments of a listed commit, by revision and experiment name.
    Experiment refs live in one clone (git does not push or clone them), so without this a
    fresh clone's table would lose every earlier ablation."""
    merged = [dict(rev) for rev in shown]
    by_rev = {rev.get("rev"): rev for rev in merged}
    for rev in older:
        if rev.get("rev") in (None, "workspace"):
            continue
        if rev["rev"] not in by_rev:
            merged.append(rev)
            continue
        mine = by_rev[rev["rev"]]
        names = {exp.get("name") for exp in mine.get("experiments") or []}
        extra = [exp for exp in rev.get("experiments") or [] if exp.get("name") not in names]
        if extra:
            mine["experiments"] = list(mine.get("experiments") or []) + extra
    return merged


def _read_snapshot(path: str) -> list:
    if not Path(path).is_file():
        raise SystemExit(f"error: --keep: {path} not found")
    try:
        older = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise SystemExit(f"error: {path}: not valid JSON ({err.msg})")
    if not isinstance(older, list):
        raise SystemExit(f"error: {path}: not `dvc exp show --json` output (expected a list of revisions)")
    return older


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="read this file instead of running `dvc exp show --json`")
    parser.add_argument("--keep", metavar="SNAPSHOT", help="also keep the runs of this earlier snapshot "
                        "(e.g. the committed metrics/experiments.json: experiments of other clones)")
    parser.add_argument("--save", metavar="FILE", help="write the (merged) snapshot here")
    parser.add_argument("--write", action="store_true", help=f"replace the table in {TABLE_PAGE}")
    args = parser.parse_args()
    if args.json:
        if not Path(args.json).is_file():
            raise SystemExit(f"error: --json: {args.json} not found")
        text = Path(args.json).read_text()
    else:
        run = subprocess.run(["dvc", "exp", "show", "--all-commits", "--json"], capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"error: `dvc exp show` failed: {run.stderr.strip().splitlines()[-1:]}")
        text = run.stdout
    try:
        times = json.loads(TIMES.read_text()) if TIMES.is_file() else {}
    except json.JSONDecodeError as err:
        raise SystemExit(f"error: {TIMES}: not valid JSON ({err.msg})")
    try:
        shown = json.loads(text)
        if not isinstance(shown, list):
            raise TypeError("expected a list of revisions")
        if args.keep:
            shown = merge_snapshots(shown, _read_snapshot(args.keep))
        block = tables(shown, times)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise SystemExit(f"error: {args.json or 'dvc exp show'}: not `dvc exp show --json` output ({err!r})")
    if args.save:
        Path(args.save).write_text(json.dumps(shown, indent=1) + "\n")
    if args.write:
        if not TABLE_PAGE.is_file():
            raise SystemExit(f"error: {TABLE_PAGE} not found (run from the repository root)")
        content = TABLE_PAGE.read_text()
        if START not in content or END not in content:
            raise SystemExit(f"error: {TABLE_PAGE} has no {START} ... {END} block")
        TABLE_PAGE.write_text(re.sub(f"{START}.*?{END}", lambda _: f"{START}\n{block}{END}", content, flags=re.S))
    print(block)


if __name__ == "__main__":
    main()
