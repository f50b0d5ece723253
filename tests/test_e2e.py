"""End to end: the real `dvc repro` on a slice of the real corpora (from the team remote).

Checks that the pipeline runs, that two runs give identical manifest, splits, features and
metrics, that changing only a train.* param reruns only train and evaluate, and that
`dvc exp run -S train.lr=...` shows up in `dvc exp show`. Takes a few minutes on 2 cores.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
REMOTE = (ROOT.parent / "shared" / "dvc-remote").resolve()
DATA_STAGES = ("manifest", "prepare", "augment", "featurize")
ALL_STAGES = {*DATA_STAGES, "baseline", "train", "export", "evaluate"}

pytestmark = pytest.mark.e2e


def sh(cwd, *args, check=True):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    run = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env)
    if check and run.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return run


def ran_stages(output: str) -> set:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


def lock_outs(repo: Path) -> dict:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {stage: sorted((o["path"], o.get("md5")) for o in lock[stage]["outs"]) for stage in DATA_STAGES}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    if not REMOTE.is_dir():
        pytest.fail(f"{REMOTE} not found: the end-to-end test needs the team's DVC remote beside the project")
    repo = tmp_path_factory.mktemp("e2e") / "repo"
    tracked = sh(ROOT, "git", "ls-files", "-z").stdout.split("\0")
    generated = ("dvc.lock", "metrics/", "plots/", "dvclive/")  # outputs of the run under test
    for name in filter(None, tracked):
        if name.startswith(generated) or not (ROOT / name).exists():
            continue
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["manifest"]["max_files_per_corpus"] = 45   # the slice: 180 real clips
    params["train"].update(epochs=2, patience=0)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(repo, "git", "init", "-q")
    sh(repo, "git", "config", "user.email", "e2e@example.com")
    sh(repo, "git", "config", "user.name", "e2e")
    sh(repo, "dvc", "remote", "add", "-f", "-d", "team", str(REMOTE))
    sh(repo, "dvc", "config", "core.analytics", "false")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "slice")
    sh(repo, "dvc", "pull", "-q", *(str(p.relative_to(repo)) for p in sorted((repo / "data/raw").glob("*.dvc"))))
    return repo


def test_repro_runs_every_stage_and_writes_outputs(repo):
    run = sh(repo, "dvc", "repro")
    assert ran_stages(run.stdout) == ALL_STAGES
    metrics = json.loads((repo / "metrics/evaluate.json").read_text())
    assert metrics["protocol"] == {"split": "speaker", "augment_before_split": False, "inputs": "both"}
    assert 0 <= metrics["test"]["ua"] <= 1 and metrics["test"]["clips"] > 0
    baseline = json.loads((repo / "metrics/baseline.json").read_text())["test"]
    assert metrics["test"]["margin_over_baseline"]["ua"] == metrics["test"]["ua"] - baseline["ua"]
    for path in ("models/model.keras", "models/model.h5", "models/bundle.json", "plots/confusion.csv",
                 "dvclive/plots/metrics/train/loss.tsv", "dvclive/plots/metrics/eval/accuracy.tsv"):
        assert (repo / path).is_file(), path
    assert len(list((repo / "plots/spectrograms").glob("*.png"))) == 7
    assert len(list((repo / "data/features").iterdir())) == 6  # a handful of files, not one per clip
    # honest protocol: no speaker and no recording in two splits, copies only in train
    import pandas as pd
    clips = pd.read_csv(repo / "data/augmented/clips.csv")
    assert clips.groupby("speaker").split.nunique().max() == 1
    assert clips.groupby("path").split.nunique().max() == 1
    assert set(clips[clips.augmentation != "none"].split) == {"train"}
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "first run")


def test_second_run_gives_identical_artifacts_and_metrics(repo):
    first_outs = lock_outs(repo)
    first_metrics = (repo / "metrics/evaluate.json").read_text()
    first_train = (repo / "metrics/train.json").read_text()
    first_baseline = (repo / "metrics/baseline.json").read_text()
    run = sh(repo, "dvc", "repro", "--force")
    assert ran_stages(run.stdout) == ALL_STAGES
    assert lock_outs(repo) == first_outs
    assert (repo / "metrics/evaluate.json").read_text() == first_metrics
    assert (repo / "metrics/train.json").read_text() == first_train
    assert (repo / "metrics/baseline.json").read_text() == first_baseline


def test_train_param_change_reruns_only_train_and_evaluate(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["train"]["dropout"] = 0.2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run = sh(repo, "dvc", "repro")
    assert ran_stages(run.stdout) == {"train", "export", "evaluate"}  # export converts the new model
    sh(repo, "git", "checkout", "params.yaml")
    sh(repo, "dvc", "checkout", "-q", "--force")  # back to the committed model for the next test


def test_exp_run_with_set_param_appears_in_exp_show(repo):
    run = sh(repo, "dvc", "exp", "run", "-S", "train.lr=0.0005")
    assert ran_stages(run.stdout) == {"train", "export", "evaluate"}
    shown = json.loads(sh(repo, "dvc", "exp", "show", "--json").stdout)
    experiments = [exp for rev in shown for exp in (rev.get("experiments") or [])]
    lrs = [run_["revs"][0]["data"]["params"]["params.yaml"]["data"]["train"]["lr"] for run_ in experiments]
    assert 0.0005 in lrs
    exp = experiments[lrs.index(0.0005)]["revs"][0]["data"]
    assert "test" in exp["metrics"]["metrics/evaluate.json"]["data"]


def test_bad_param_stops_repro_with_one_line(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["prepare"]["fractions"]["test"] = 0.5
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run = sh(repo, "dvc", "repro", check=False)
    sh(repo, "git", "checkout", "params.yaml")
    assert run.returncode != 0
    assert "error: params.yaml: prepare.fractions must sum to 1 (got 1.35)" in run.stderr + run.stdout


# --- using the trained model (python -m ser predict / evaluate) on real clips -----------------

def real_clips(repo, n=12):
    return sorted((repo / "data/raw/savee/ALL").glob("*.flac"))[:n]


def test_onnx_matches_keras_on_real_clips(repo):
    import numpy as np

    from ser.predict import Predictor

    clips = real_clips(repo) + sorted((repo / "data/raw/ravdess_speech").rglob("*.flac"))[:12]
    onnx_results = Predictor(repo / "models", backend="onnx").analyse(clips, progress=False)
    keras_results = Predictor(repo / "models", backend="keras").analyse(clips, progress=False)
    a = np.concatenate([r.probabilities for r in onnx_results])
    b = np.concatenate([r.probabilities for r in keras_results])
    assert a.shape == (24, 7)
    assert np.abs(a - b).max() < 1e-4


def test_predict_cli_on_real_and_bad_files(repo, tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    for clip in real_clips(repo, 3):
        shutil.copy(clip, folder / clip.name)
    (folder / "broken.wav").write_text("not audio")
    import numpy as np
    import soundfile as sf
    sf.write(folder / "silence.wav", np.zeros(16000), 16000)
    stereo = tmp_path / "stereo_44k.wav"  # any rate, stereo: resampled and mixed down
    y, sr = sf.read(real_clips(repo, 1)[0])
    sf.write(stereo, np.stack([y, y], axis=1), sr)
    run = sh(repo, sys.executable, "-m", "ser", "predict", str(folder), str(stereo), "--format", "json", "-q",
             check=False)
    assert run.returncode == 1
    rows = json.loads(run.stdout)
    assert len(rows) == 4 and all(abs(sum(r["probabilities"].values()) - 1) < 1e-3 for r in rows)
    errors = run.stderr.strip().splitlines()
    assert errors[-1] == "predict: 4 files labelled, 2 failed"
    assert any("broken.wav: cannot decode audio" in e for e in errors)
    assert any("silence.wav: all silence" in e for e in errors)
    assert "Traceback" not in run.stderr

    run = sh(repo, sys.executable, "-m", "ser", "predict", str(real_clips(repo, 1)[0]), "--top-k", "3",
             "--segment", "1", "--format", "csv")
    lines = run.stdout.strip().splitlines()
    assert lines[0].startswith("file,segment,emotion,confidence,p_angry")
    assert lines[1].split(",")[1] == "all" and len(lines) >= 3


def test_evaluate_cli_on_a_corpus_folder(repo, tmp_path):
    run = sh(repo, sys.executable, "-m", "ser", "evaluate", "data/raw/savee", "--corpus", "savee", "-q",
             "--confusion", str(tmp_path / "cm.png"), "--json", str(tmp_path / "m.json"))
    assert "360 clips scored, 0 failed" in run.stdout
    assert "UA " in run.stdout and "macro-F1" in run.stdout
    assert (tmp_path / "cm.png").stat().st_size > 1000
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["clips"] == 360 and set(metrics["per_class"]) == {
        "angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised"}


def test_teammate_pulls_the_model_and_evaluates_without_training(repo, tmp_path):
    """A model shared through a DVC remote is usable by `python -m ser` with no training run."""
    remote = tmp_path / "remote"
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "share", check=False)
    sh(repo, "dvc", "remote", "add", "--local", "scratch", str(remote))
    sh(repo, "dvc", "push", "-q", "-r", "scratch", "train", "export")
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    sh(clone, "dvc", "remote", "add", "--local", "-d", "scratch", str(remote))
    sh(clone, "dvc", "pull", "-q", "train", "export")
    assert not (clone / "data/features").exists()  # nothing but the model came over
    run = sh(clone, sys.executable, "-m", "ser", "evaluate", str(repo / "data/raw/savee"), "--corpus", "savee", "-q",
             "--confusion", str(tmp_path / "cm.png"))
    assert "360 clips scored, 0 failed" in run.stdout
