"""scripts/exp_table.py turns `dvc exp show --json` into the ablation table of docs/ablations.md."""

import importlib.util
import json
import subprocess
import sys

from .conftest import ROOT, checkout_env

spec = importlib.util.spec_from_file_location("exp_table", ROOT / "scripts" / "exp_table.py")
exp_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(exp_table)


def run(name, ua, mode="speaker", state="success", loco_ua=0.3):
    params = {"normalize": {"mode": mode, "prior_clips": 10}, "train": {"inputs": ["features"], "mixup": 0.2}}
    cv = {"ua": {"mean": ua, "std": 0.05}, "baseline_ua": {"mean": 0.4, "std": 0.02}, "ua_file": {"mean": ua - 0.1}}
    loco = {"savee": {"ua": loco_ua, "baseline_ua": 0.2, "ua_file": 0.1}, "tess": {"ua": loco_ua + 0.1,
                                                                                "baseline_ua": 0.3, "ua_file": 0.2}}
    data = {"params": {"params.yaml": {"data": params}},
            "metrics": {"metrics/cv.json": {"data": cv}, "metrics/loco.json": {"data": loco}}}
    return {"name": name, "executor": {"state": state}, "revs": [{"name": name, "data": data}]}


def shown():
    head = run("main", 0.6)["revs"][0]
    return [{"rev": "workspace", "name": None, "data": head["data"], "experiments": None},
            {"rev": "abc1234", "name": "main", "data": head["data"], "experiments": [
                run("abl-norm-global", 0.45, mode="global", loco_ua=0.2),
                run("still-running", 0.5, mode="corpus", state="running")]}]


def test_rows_name_the_change_and_compare_with_the_baseline():
    text = exp_table.tables(shown(), {"abl-norm-global": 330})
    lines = text.splitlines()
    assert "| workspace |" not in text and sum("| main |" in line for line in lines) == 1  # the same run twice
    assert "still-running" not in text  # unfinished runs show their parent's metrics
    ablation = next(line for line in lines if line.startswith("| abl-norm-global |"))
    assert ablation == ("| abl-norm-global | normalize.mode=global | 0.450 ± 0.050 | 0.400 | +0.050 | 0.250 | 0.250 "
                        "| 0.200 | 0.300 | 0.350 | 0.150 | 5.5 min |")
    workspace = next(line for line in lines if line.startswith("| main |"))
    assert "(a committed configuration: its own `dvc repro`)" in workspace and "| 0.600 ± 0.050 |" in workspace
    assert workspace.endswith("| – |")


def test_write_replaces_the_block_of_the_ablations_page(tmp_path):
    assert exp_table.TABLE_PAGE.as_posix() == "docs/ablations.md"
    assert exp_table.START in (ROOT / exp_table.TABLE_PAGE).read_text()   # the committed page has the block
    page = tmp_path / exp_table.TABLE_PAGE
    page.parent.mkdir()
    page.write_text(f"intro\n{exp_table.START}\nstale table\n{exp_table.END}\nrest\n")
    (tmp_path / "README.md").write_text(f"{exp_table.START}\nnot this one\n{exp_table.END}\n")
    (tmp_path / "shown.json").write_text(json.dumps(shown()))
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "exp_table.py"), "--json", "shown.json", "--write"],
                            cwd=tmp_path, capture_output=True, text=True, env=checkout_env())
    assert result.returncode == 0, result.stderr
    text = page.read_text()
    assert "stale table" not in text and "| abl-norm-global |" in text and text.endswith(f"{exp_table.END}\nrest\n")
    assert "not this one" in (tmp_path / "README.md").read_text()   # the README is left alone
    (tmp_path / "bad.json").write_text('{"not": "a list"}')
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "exp_table.py"), "--json", "bad.json"],
                            cwd=tmp_path, capture_output=True, text=True, env=checkout_env())
    assert result.returncode == 1 and result.stderr.startswith("error: bad.json: not `dvc exp show --json` output")


def test_runs_of_an_older_snapshot_are_kept():
    """Experiment refs stay in the clone that ran them: the committed snapshot keeps them."""
    older = shown()
    newer = [{"rev": "workspace", "name": None, "data": older[0]["data"], "experiments": None},
             {"rev": "abc1234", "name": "main", "data": older[0]["data"],
              "experiments": [run("new-run", 0.7)]},
             {"rev": "def5678", "name": None, "data": older[0]["data"], "experiments": None}]
    merged = exp_table.merge_snapshots(newer, older)
    names = [e["name"] for rev in merged for e in rev.get("experiments") or []]
    assert sorted(names) == ["abl-norm-global", "new-run", "still-running"]
    assert [rev["rev"] for rev in merged] == ["workspace", "abc1234", "def5678"]
    assert older[1]["experiments"][0]["name"] == "abl-norm-global"   # inputs untouched
    text = exp_table.tables(merged)
    assert "| new-run |" in text and "| abl-norm-global |" in text


def test_the_reference_table_lists_runs_that_measured_it():
    runs = shown()
    by = {k: {"ua": {"mean": 0.5 + i / 100}} for i, k in enumerate(("0", "1", "3", "5", "all"))}
    data = runs[1]["experiments"][0]["revs"][0]["data"]["metrics"]
    data["metrics/cv.json"]["data"]["by_reference"] = {"network": by, "linear": by}
    for c, acc in (("savee", 0.6), ("tess", 0.8)):
        data["metrics/loco.json"]["data"][c]["by_reference"] = {
            m: {k: {"ua": 0.3, "confident_accuracy": acc, "coverage": 0.25} for k in by} for m in ("network", "linear")}
    text = exp_table.tables(runs, {})
    lines = text.splitlines()
    [network] = [line for line in lines
                 if line.startswith("| abl-norm-global | normalize.mode=global | model: network |")]
    assert network.endswith("| 0.500 | 0.510 | 0.520 | 0.530 | 0.540 | 0.300 | 0.300 | 0.300 | 0.300 | 0.300 "
                            "| 0.600 (25%) |")
    assert any(line.startswith("|  |  | linear probe | 0.500") for line in lines)
    assert sum(line.startswith("| main |") for line in lines) == 1   # the commit did not measure it: one row only
