"""Regenerate the README's experiment tables from `dvc exp show --json`.

Rows are experiments (and the workspace); they are grouped by protocol and inputs (ablation
table) and by held-out corpus (leave-one-corpus-out table). With --write, the tables replace
the block between `<!-- exp-tables:start -->` and `<!-- exp-tables:end -->` in README.md.
"""

import argparse
import json
import re
import subprocess
from pathlib import Path

START, END = "<!-- exp-tables:start -->", "<!-- exp-tables:end -->"


def _runs(shown):
    """Yield (name, params, metrics) for the workspace, each commit and each finished experiment."""
    for rev in shown:
        # queued, running and failed experiments show their parent's metrics: leave them out
        label = rev.get("name") or (rev.get("rev", "") if rev.get("rev") == "workspace" else rev.get("rev", "")[:7])
        entries = [(label, rev)] + [
            (exp.get("name"), exp["revs"][0]) for exp in rev.get("experiments") or []
            if (exp.get("executor") or {}).get("state", "success") == "success"]
        for name, entry in entries:
            data = entry.get("data") or {}
            params = (data.get("params") or {}).get("params.yaml", {}).get("data")
            metrics = {k: v.get("data", {}) for k, v in (data.get("metrics") or {}).items()}
            if params and metrics.get("metrics/evaluate.json"):
                yield name, params, metrics


def _fmt(x):
    return f"{x:.3f}" if isinstance(x, (int, float)) else "–"


def tables(shown) -> str:
    seen, ablation, loco = set(), [], []
    for name, params, metrics in _runs(shown):
        ev = metrics["metrics/evaluate.json"]
        test = ev.get("test", {})
        base = metrics.get("metrics/baseline.json", {}).get("test", {})
        prep, aug, train = params["prepare"], params["augment"], params["train"]
        key = (prep["split"], tuple(prep.get("test_corpora") or ()), aug["before_split"], train["inputs"],
               train["lr"], train["dropout"], train["epochs"])
        if key in seen:
            continue
        seen.add(key)
        row = {"name": name, "split": prep["split"], "before": aug["before_split"], "inputs": train["inputs"],
               "test": test, "base": base, "held_out": ", ".join(prep.get("test_corpora") or []),
               "lr": train["lr"], "dropout": train["dropout"]}
        (loco if prep["split"] == "corpus" else ablation).append(row)
    corpora = sorted({c for r in ablation for c in r["test"].get("per_corpus", {})})
    out = ["**Ablation × protocol** (test split; UA / WA / macro-F1; eGeMAPS+SVM baseline on the same split)\n",
           "| protocol | inputs | lr | dropout | UA | WA | macro-F1 | baseline UA | margin (UA) | "
           + " | ".join(f"{c} UA" for c in corpora) + " | experiment |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(corpora) + "---|"]
    order = {"features": 0, "spectrogram": 1, "both": 2}
    for r in sorted(ablation, key=lambda r: (r["split"] != "random", order[r["inputs"]], r["lr"], r["dropout"])):
        protocol = ("paper: random split, augment before split" if r["split"] == "random" and r["before"]
                    else f"honest: {r['split']} split, augment train only" if not r["before"]
                    else f"{r['split']} split, augment before split")
        t, b = r["test"], r["base"]
        margin = t["ua"] - b["ua"] if "ua" in b and "ua" in t else None
        out.append(f"| {protocol} | {r['inputs']} | {r['lr']} | {r['dropout']} | {_fmt(t.get('ua'))} | "
                   f"{_fmt(t.get('wa'))} | {_fmt(t.get('macro_f1'))} | {_fmt(b.get('ua'))} | "
                   f"{'–' if margin is None else f'{margin:+.3f}'} | "
                   + " | ".join(_fmt(t.get("per_corpus", {}).get(c, {}).get("ua")) for c in corpora)
                   + f" | {r['name']} |")
    if loco:
        out += ["", "**Leave one corpus out** (train and validate on the others, test on the held-out corpus)\n",
                "| held-out corpus | inputs | test clips | UA | WA | macro-F1 | baseline UA | experiment |",
                "|---|---|---:|---:|---:|---:|---:|---|"]
        for r in sorted(loco, key=lambda r: r["held_out"]):
            t = r["test"]
            out.append(f"| {r['held_out']} | {r['inputs']} | {t.get('clips', '–')} | {_fmt(t.get('ua'))} | "
                       f"{_fmt(t.get('wa'))} | {_fmt(t.get('macro_f1'))} | {_fmt(r['base'].get('ua'))} | {r['name']} |")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="read this file instead of running `dvc exp show --json`")
    parser.add_argument("--write", action="store_true", help="replace the tables in README.md")
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
        shown = json.loads(text)
        if not isinstance(shown, list):
            raise TypeError("expected a list of revisions")
        block = tables(shown)
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise SystemExit(f"error: {args.json or 'dvc exp show'}: not `dvc exp show --json` output ({err!r})")
    if args.write:
        readme = Path("README.md")
        content = readme.read_text()
        if START not in content:
            raise SystemExit(f"error: README.md has no {START} marker")
        readme.write_text(re.sub(f"{START}.*?{END}", f"{START}\n{block}{END}", content, flags=re.S))
    print(block)


if __name__ == "__main__":
    main()
