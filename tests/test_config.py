import subprocess
import sys

import pytest
import yaml

from ser.config import load_params, validate
from ser.errors import ConfigError


def test_project_params_are_valid(params):
    assert validate(params) is params


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["labels"]["map"].update(calm="bored"), "labels.map.calm maps to unknown emotion 'bored'"),
    (lambda p: p["prepare"]["fractions"].update(test=0.3), "prepare.fractions must sum to 1"),
    (lambda p: p["train"].update(lr=0), "train.lr must be > 0"),
    (lambda p: p["train"].update(lr=-0.01), "train.lr must be > 0"),
    (lambda p: p["manifest"]["corpora"].append("emodb"), "manifest.corpora has unknown entry 'emodb'"),
    (lambda p: p["train"].update(inputs="audio"), "train.inputs must be one of features, spectrogram, both"),
    (lambda p: p["prepare"].update(split="by_actor"), "prepare.split must be one of speaker, random"),
    (lambda p: p["train"].update(epochs=2.5), "train.epochs must be an integer"),
    (lambda p: p["augment"]["methods"].append("reverb"), "augment.methods has unknown entry 'reverb'"),
    (lambda p: p["featurize"]["features"].append("pitch"), "featurize.features has unknown entry 'pitch'"),
    (lambda p: p["labels"].update(classes=["angry", "angry"]), "labels.classes has duplicate entries"),
    (lambda p: p["train"].pop("dropout"), "train.dropout is missing"),
    (lambda p: p["train"].update(batch_size="64"), "train.batch_size must be a number"),
])
def test_invalid_params_name_the_key(params, edit, message):
    edit(params)
    with pytest.raises(ConfigError) as err:
        validate(params)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unreadable_params_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="params.yaml: line 2 is not valid YAML|params.yaml:.*not valid YAML"):
        load_params(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "missing.yaml")


@pytest.mark.parametrize("stage", ["manifest", "prepare", "augment", "featurize", "train", "evaluate"])
def test_stage_refuses_bad_params_before_any_work(project_copy, stage):
    params = yaml.safe_load((project_copy / "params.yaml").read_text())
    params["train"]["lr"] = -1
    (project_copy / "params.yaml").write_text(yaml.safe_dump(params))
    run = subprocess.run([sys.executable, f"stages/{stage}.py"], cwd=project_copy, capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip() == "error: params.yaml: train.lr must be > 0 (got -1)"
    assert sorted(p.name for p in project_copy.iterdir()) == ["params.yaml", "stages"]  # nothing written
