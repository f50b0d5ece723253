"""scripts/exp_table.py turns `dvc exp show --json` into the README tables."""

import importlib.util

from .conftest import ROOT

spec = importlib.util.spec_from_file_location("exp_table", ROOT / "scripts" / "exp_table.py")
exp_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(exp_table)


def run(name, split, before, inputs, ua, held_out=(), state="success", base_ua=0.4):
    params = {"prepare": {"split": split, "test_corpora": list(held_out)}, "augment": {"before_split": before},
              "train": {"inputs": inputs, "lr": 0.001, "dropout": 0.5, "epochs": 40}}
    test = {"ua": ua, "wa": ua + 0.01, "macro_f1": ua - 0.01, "clips": 100, "per_corpus": {"tess": {"ua": ua}}}
    data = {"params": {"params.yaml": {"data": params}},
            "metrics": {"metrics/evaluate.json": {"data": {"test": test}},
                        "metrics/baseline.json": {"data": {"test": {"ua": base_ua}}}}}
    return {"name": name, "executor": {"state": state}, "revs": [{"name": name, "data": data}]}


def test_tables_group_by_protocol_and_held_out_corpus():
    head = run("main", "speaker", False, "both", 0.5)["revs"][0]
    shown = [{"rev": "workspace", "name": None, "data": head["data"], "experiments": None},
             {"rev": "abc1234", "name": "main", "data": head["data"], "experiments": [
                 run("paper-both", "random", True, "both", 0.9),
                 run("honest-features", "speaker", False, "features", 0.45),
                 run("still-running", "speaker", False, "spectrogram", 0.5, state="running"),
                 run("loco-tess", "corpus", False, "both", 0.3, held_out=["tess"])]}]
    text = exp_table.tables(shown)
    lines = text.splitlines()
    paper = next(line for line in lines if "paper-both" in line)
    assert "paper: random split, augment before split" in paper and "| 0.900 |" in paper and "+0.500" in paper
    assert sum("| workspace |" in line for line in lines) == 1  # the commit duplicates the workspace
    assert "still-running" not in text  # unfinished runs show their parent's metrics
    loco = next(line for line in lines if "loco-tess" in line)
    assert loco.startswith("| tess | both | 100 | 0.300 |")
    assert lines.index(paper) < next(i for i, line in enumerate(lines) if "honest-features" in line)
