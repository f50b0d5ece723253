import subprocess
import sys

import pytest
import yaml

from ser.config import load_params, validate
from ser.errors import ConfigError

from .conftest import ROOT, checkout_env


def test_project_params_are_valid(params):
    assert validate(params) is params


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["labels"]["map"].update(calm="bored"), "labels.map.calm maps to unknown emotion 'bored'"),
    (lambda p: p["prepare"].update(folds=1), "prepare.folds must be >= 2"),
    (lambda p: p.update(seed=2 ** 32), "seed must be <= 4294967295"),
    (lambda p: p["normalize"].update(mode="person"), "normalize.mode must be one of global, utterance, speaker, corpus"),
    (lambda p: p["normalize"].update(prior_clips=-1), "normalize.prior_clips must be >= 0"),
    (lambda p: p["train"].update(balance="gender"), "train.balance must be one of none, speaker, corpus"),
    (lambda p: p["augment"].update(noise_snr_db=[30, 10]), "augment.noise_snr_db must be [low, high]"),
    (lambda p: p["train"].update(inputs=["features", "audio"]), "train.inputs has unknown entry 'audio'"),
    (lambda p: p["train"].update(lr=0), "train.lr must be > 0"),
    (lambda p: p["train"].update(lr=-0.01), "train.lr must be > 0"),
    (lambda p: p["manifest"]["corpora"].append("emodb"), "manifest.corpora has unknown entry 'emodb'"),
    (lambda p: p["train"].update(inputs="features"), "train.inputs must be a non-empty list"),
    (lambda p: p["prepare"].update(split="by_actor"), "prepare.split must be one of speaker, random"),
    (lambda p: p["train"].update(epochs=2.5), "train.epochs must be an integer"),
    (lambda p: p["augment"]["methods"].append("reverb"), "augment.methods has unknown entry 'reverb'"),
    (lambda p: p["train"].update(mixup=-1), "train.mixup must be >= 0"),
    (lambda p: p["featurize"]["features"].append("pitch"), "featurize.features has unknown entry 'pitch'"),
    (lambda p: p["labels"].update(classes=["angry", "angry"]), "labels.classes has duplicate entries"),
    (lambda p: p["train"].pop("dropout"), "train.dropout is missing"),
    (lambda p: p["train"].update(batch_size="many"), "train.batch_size must be a number"),
    (lambda p: p["encoder"].update(layers=[]), "encoder.layers must be a non-empty list of layer numbers"),
    (lambda p: p["encoder"].update(layers=[2, 2]), "encoder.layers has duplicate entries"),
    (lambda p: p["encoder"].update(layers=["2"]), "encoder.layers must be a non-empty list of layer numbers"),
    (lambda p: p["encoder"].update(pooling="max"), "encoder.pooling must be one of mean, mean_std, std"),
    (lambda p: p["encoder"].update(weights=""), "encoder.weights must be `pinned` or a CTranslate2 Whisper model"),
    (lambda p: p["normalize"].update(file_share=1.5), "normalize.file_share must be <= 1"),
    (lambda p: p.pop("encoder"), "encoder.weights is missing"),
])
def test_invalid_params_name_the_key(params, edit, message):
    edit(params)
    with pytest.raises(ConfigError) as err:
        validate(params)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_numbers_written_without_a_dot_are_numbers(tmp_path):
    # YAML reads 1e-4 as the string "1e-4"; a researcher means the number.
    text = (ROOT / "params.yaml").read_text().replace("  lr: 0.001 ", "  lr: 1e-4 ").replace("epochs: 20", "epochs: '20'")
    (tmp_path / "params.yaml").write_text(text)
    params = load_params(tmp_path / "params.yaml")
    assert params["train"]["lr"] == 1e-4 and params["train"]["epochs"] == 20


def test_unreadable_params_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="params.yaml: line 2 is not valid YAML|params.yaml:.*not valid YAML"):
        load_params(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "missing.yaml")


STAGES = ["manifest", "prepare", "augment", "featurize", "egemaps", "embed", "cv", "loco", "train"]


def test_every_stage_is_tested():
    assert sorted(STAGES) == sorted(p.stem for p in (ROOT / "stages").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("stage", STAGES)
def test_stage_refuses_bad_params_before_any_work(project_copy, stage):
    params = yaml.safe_load((project_copy / "params.yaml").read_text())
    params["train"]["lr"] = -1
    (project_copy / "params.yaml").write_text(yaml.safe_dump(params))
    run = subprocess.run([sys.executable, "-m", f"stages.{stage}"], cwd=project_copy, capture_output=True, text=True,
                         env=checkout_env())
    assert run.returncode == 2
    assert run.stderr.strip() == "error: params.yaml: train.lr must be > 0 (got -1)"
    assert sorted(p.name for p in project_copy.iterdir()) == ["params.yaml", "stages"]  # nothing written
