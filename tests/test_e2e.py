"""End to end: the real `dvc repro` on a slice of the real corpora (from the team remote).

One module fixture runs the pipeline once; tests that change anything work on their own copy
of that repo, so every test passes alone or in any order. Checks: every stage runs and writes
its outputs; no speaker crosses a fold; a forced rerun gives byte-identical data and identical
metrics and weights; a train.* change reruns only cv, loco and train; `dvc exp run -S` shows up
in `dvc exp show`; the trained model labels real clips through `python -m ser`; a teammate can
pull just the model. Takes a few minutes on 2 cores.
"""

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ser.features import encoder

from .conftest import ROOT, checkout_env

REMOTE = (ROOT.parent / "shared" / "dvc-remote").resolve()
DATA_STAGES = ("manifest", "prepare", "augment", "featurize", "egemaps", "encoder", "embed")
ALL_STAGES = {*DATA_STAGES, "cv", "loco", "train"}
CORPORA = {"ravdess_speech", "ravdess_song", "savee", "tess"}

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def sh(cwd, *args, check=True):
    run = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=checkout_env())
    if check and run.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return run


def ran_stages(output: str) -> set:
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}


def lock_outs(repo: Path) -> dict:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {stage: sorted((o["path"], o.get("md5")) for o in lock[stage]["outs"]) for stage in DATA_STAGES}


def edit_params(repo: Path, edit):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    edit(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A repo on a 45-clips-per-corpus slice after one full `dvc repro`, committed: (repo, output)."""
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
    for name in ("stages", "ser"):   # this checkout's code, committed or not
        shutil.copytree(ROOT / name, repo / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("params.yaml", "dvc.yaml"):   # the committed pipeline (a running `dvc exp run` edits params.yaml)
        (repo / name).write_text(sh(ROOT, "git", "show", f"HEAD:{name}").stdout)
    # The slice; augmentation on (cheap methods) so the copies' path is exercised too.
    edit_params(repo, lambda p: (p["manifest"].update(max_files_per_corpus=45), p["train"].update(epochs=2),
                                 p["augment"].update(methods=["gain", "noise"], copies=1),
                                 p["reference"].update(draws=2)))
    sh(repo, "git", "init", "-q")
    sh(repo, "git", "config", "user.email", "e2e@example.com")
    sh(repo, "git", "config", "user.name", "e2e")
    sh(repo, "dvc", "remote", "add", "-f", "-d", "team", str(REMOTE))
    sh(repo, "dvc", "config", "core.analytics", "false")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "slice")
    sh(repo, "dvc", "pull", "-q", *(str(p.relative_to(repo)) for p in sorted((repo / "data/raw").glob("*.dvc"))))
    run = sh(repo, "dvc", "repro")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "first run")
    return repo, run.stdout


@pytest.fixture
def scratch(pipeline, tmp_path):
    """A private copy of the reproduced repo (git history, DVC cache and outputs), for tests that change it."""
    copy = tmp_path / "repo"
    shutil.copytree(pipeline[0], copy, symlinks=True)
    return copy


def test_repro_runs_every_stage_and_writes_outputs(pipeline):
    repo, output = pipeline
    assert ran_stages(output) == ALL_STAGES
    cv = json.loads((repo / "metrics/cv.json").read_text())
    assert cv["folds"] == 5 and len(cv["per_fold"]) == 5
    for key in ("ua", "wa", "macro_f1", "baseline_ua"):
        assert set(cv[key]) == {"mean", "std"}
    assert cv["ua"]["mean"] == pytest.approx(np.mean([f["ua"] for f in cv["per_fold"]]))
    assert cv["baseline_ua"]["std"] == pytest.approx(np.std([f["baseline_ua"] for f in cv["per_fold"]]))
    assert set(cv["per_corpus"]) == CORPORA
    loco = json.loads((repo / "metrics/loco.json").read_text())
    assert set(loco) == CORPORA
    clips = pd.read_csv(repo / "data/features/clips.csv")
    originals = clips[clips.augmentation == "none"]
    for corpus, scores in loco.items():
        assert {"ua", "baseline_ua", "clips"} <= set(scores)
        assert scores["clips"] == (originals.corpus == corpus).sum()
    assert sum(f["clips"] for f in cv["per_fold"]) == len(originals)   # every original tested exactly once
    # honest protocol: no speaker in two folds, copies in their original's fold
    assert len(clips) == 2 * len(originals) and set(clips.augmentation) == {"none", "copy1"}
    assert clips.groupby("speaker").fold.nunique().max() == 1
    assert clips.groupby("source").fold.nunique().max() == 1
    for path in ("models/model.keras", "models/model.onnx", "models/filterbanks.npz", "models/bundle.json",
                 "models/encoder.onnx", "data/embed/embeddings.npz",
                 "plots/cv_confusion.csv", "plots/cv_ua.png", "plots/loco_ua.png", "dvclive/plots/metrics/train/loss.tsv"):
        assert (repo / path).is_file(), path
    assert sorted(p.name for p in (repo / "data/features").iterdir()) == ["clips.csv", "features.npz"]
    bundle = json.loads((repo / "models/bundle.json").read_text())
    assert bundle["normalize"]["mode"] == "speaker" and set(bundle["normalize"]["priors"]) == set(bundle["inputs"])
    assert "encoder" in bundle["inputs"] and bundle["encoder"]["model_sha256"] == encoder.PINNED_SHA256
    for key in ("ua_file",):
        assert set(cv[key]) == {"mean", "std"} and all(key in v for v in loco.values())
    # calibration: whole speakers fitted in cv, lone files and references on the unseen corpora of
    # loco; carried by the bundle, checked per held-out corpus in loco
    for way in ("group", "file"):
        fitted = cv["calibration"][way]
        assert {"temperature", "ece_before", "ece_after", "nll_before", "nll_after"} == set(fitted)
    assert bundle["calibration"]["group"]["temperature"] == cv["calibration"]["group"]["temperature"] > 0
    shipped = json.loads((repo / "metrics/calibration.json").read_text())
    for way in ("file", "reference"):
        assert bundle["calibration"][way] == shipped[way] and shipped[way]["temperature"] > 0
    assert all(0 <= v["ece"] <= 1 and 0 <= v["ece_calibrated"] <= 1 for v in loco.values())
    # the by_reference curves: every size, both models, in cv and per unseen corpus, and the plot's data
    sizes = [str(k) for k in yaml.safe_load((repo / "params.yaml").read_text())["reference"]["sizes"]]
    for model in ("network", "linear"):
        assert list(cv["by_reference"][model]) == sizes
        assert all(list(v["by_reference"][model]) == sizes for v in loco.values())
        assert all(0 <= v["by_reference"][model]["3"]["coverage"] <= 1 for v in loco.values())
    assert cv["by_reference"]["network"]["0"]["ua"]["mean"] == pytest.approx(cv["ua_file"]["mean"])
    assert cv["by_reference"]["network"]["all"]["ua"]["mean"] == pytest.approx(cv["ua"]["mean"])
    curve = pd.read_csv(repo / "plots/reference_ua.csv")
    assert list(curve.reference_clips) == [int(s) for s in sizes if s != "all"]
    assert bundle["speech"] == {"threshold": 0.5, "min_speech_s": 0.3} and bundle["loudness_dbfs"] == -23


def test_second_run_gives_identical_artifacts_and_metrics(scratch):
    before = {name: (scratch / name).read_bytes() for name in
              ("metrics/cv.json", "metrics/loco.json", "metrics/train.json", "models/bundle.json",
               "models/model.keras", "models/model.onnx", "models/encoder.onnx", "models/filterbanks.npz",
               "dvclive/metrics.json")}
    first_outs = lock_outs(scratch)
    run = sh(scratch, "dvc", "repro", "--force")
    assert ran_stages(run.stdout) == ALL_STAGES
    assert lock_outs(scratch) == first_outs
    for name, data in before.items():   # byte for byte, the model files included
        assert (scratch / name).read_bytes() == data, name
    assert sh(scratch, "git", "status", "--porcelain").stdout == ""   # dvc.lock unchanged: a clean tree
    assert not list(scratch.glob(".dvclive-*"))   # the training curves' scratch folder is gone


def test_train_param_change_reruns_only_the_training_stages(scratch):
    edit_params(scratch, lambda p: p["train"].update(dropout=0.2))
    run = sh(scratch, "dvc", "repro")
    assert ran_stages(run.stdout) == {"cv", "loco", "train"}
    edit_params(scratch, lambda p: p["normalize"].update(mode="corpus"))
    assert ran_stages(sh(scratch, "dvc", "repro").stdout) == {"cv", "loco", "train"}


def test_exp_run_with_set_param_appears_in_exp_show(scratch):
    run = sh(scratch, "dvc", "exp", "run", "-S", "normalize.mode=global", "cv")
    assert ran_stages(run.stdout) == {"cv"}
    shown = json.loads(sh(scratch, "dvc", "exp", "show", "--json").stdout)
    experiments = [exp["revs"][0]["data"] for rev in shown for exp in (rev.get("experiments") or [])]
    modes = [e["params"]["params.yaml"]["data"]["normalize"]["mode"] for e in experiments]
    assert "global" in modes
    assert "ua" in experiments[modes.index("global")]["metrics"]["metrics/cv.json"]["data"]


def test_bad_param_stops_repro_with_one_line(scratch):
    edit_params(scratch, lambda p: p["prepare"].update(folds=1))
    run = sh(scratch, "dvc", "repro", check=False)
    assert run.returncode != 0
    assert "error: params.yaml: prepare.folds must be >= 2 (got 1)" in run.stderr + run.stdout
    assert "Traceback" not in run.stderr + run.stdout


# --- using the trained model (python -m ser predict / evaluate) on real clips -----------------

def real_clips(repo, n=12):
    return sorted((repo / "data/raw/savee/ALL").glob("*.flac"))[:n]


def test_onnx_matches_keras_on_real_clips(pipeline):
    from ser.app.predict import Predictor

    repo = pipeline[0]
    clips = real_clips(repo) + sorted((repo / "data/raw/ravdess_speech").rglob("*.flac"))[:12]
    onnx_results = Predictor(repo / "models", backend="onnx").analyse(clips, progress=False)
    keras_results = Predictor(repo / "models", backend="keras").analyse(clips, progress=False)
    a = np.concatenate([r.probabilities for r in onnx_results])
    b = np.concatenate([r.probabilities for r in keras_results])
    assert a.shape == (24, 7)
    assert np.abs(a - b).max() < 1e-4


def test_predict_features_equal_training_features(pipeline):
    """predict featurizes a clip exactly as the featurize stage did (same cleaning, same code)."""
    from ser.app.analysis import analyse_file
    from ser.bundle.format import load_bundle, load_filterbanks

    repo = pipeline[0]
    bundle = load_bundle(repo / "models")
    banks = load_filterbanks(repo / "models", bundle)
    clips = pd.read_csv(repo / "data/features/clips.csv")
    with np.load(repo / "data/features/features.npz") as data:
        stored, images = data["features"], data["spectrogram"]
    with np.load(repo / "data/embed/embeddings.npz") as data:
        row_of = {int(s): i for i, s in enumerate(data["source"])}
        embedded = data["embeddings"]
    rows = clips.index[(clips.augmentation == "none") & (clips.corpus == "savee")][:3]
    for row in rows:
        # every input, not only the shipped model's: the feature vector and image are checked too
        every_input = dataclasses.replace(bundle.analysis, inputs=("features", "spectrogram", *bundle.inputs))
        result = analyse_file(str(repo / clips.path[row]), every_input, banks, model_dir=repo / "models")
        assert result.error is None
        assert np.abs(result.inputs["features"][0] - stored[row]).max() <= 1e-6 * np.abs(stored[row]).max()
        assert np.abs(result.inputs["spectrogram"][0] - images[row]).max() < 1e-6
        # The embed stage's graph cut after the deepest layer used; ONNX Runtime on 2 threads here, 1 there.
        expected = encoder.select(embedded[row_of[int(clips.source[row])]], bundle.analysis.encoder["layers"],
                                  bundle.analysis.encoder["pooling"])
        np.testing.assert_allclose(result.inputs["encoder"][0], expected, rtol=1e-5, atol=1e-5)


def test_predict_cli_on_real_and_bad_files(pipeline, tmp_path):
    repo = pipeline[0]
    folder = tmp_path / "inbox"
    folder.mkdir()
    for clip in real_clips(repo, 3):
        shutil.copy(clip, folder / clip.name)
    (folder / "broken.wav").write_text("not audio")
    import soundfile as sf
    sf.write(folder / "silence.wav", np.zeros(16000), 16000)
    stereo = tmp_path / "stereo_44k.wav"  # any rate, stereo: resampled, one channel kept
    y, sr = sf.read(real_clips(repo, 1)[0])
    sf.write(stereo, np.stack([y, y], axis=1), sr)
    run = sh(repo, sys.executable, "-m", "ser", "predict", str(folder), str(stereo), "--format", "json", "-q",
             check=False)
    assert run.returncode == 1
    rows = json.loads(run.stdout)
    assert len(rows) == 5
    voiced = [r for r in rows if r["result"] != "no speech"]
    assert len(voiced) == 4 and all(abs(sum(r["probabilities"].values()) - 1) < 1e-3 for r in voiced)
    assert {r["normalization"].split(" (")[0] for r in voiced} == {"speaker"}
    [silent] = [r for r in rows if r["result"] == "no speech"]
    assert silent["file"].endswith("silence.wav") and silent["probabilities"] is None
    errors = run.stderr.strip().splitlines()
    assert errors[-1] == "predict: 5 files labelled, 1 failed"
    assert any("broken.wav: cannot decode audio" in e for e in errors)
    assert "Traceback" not in run.stderr

    run = sh(repo, sys.executable, "-m", "ser", "predict", str(real_clips(repo, 1)[0]), "--top-k", "3",
             "--segment", "1", "--format", "csv")
    lines = run.stdout.strip().splitlines()
    assert lines[0].startswith("file,segment,result,emotion,confidence,speech_s,p_angry")
    assert lines[0].endswith(",normalization,voice_clips,warning")
    assert lines[1].split(",")[1] == "all" and len(lines) >= 3


def test_labelling_a_file_with_the_encoder_imports_no_heavy_modules(pipeline):
    """The encoder runs from its ONNX export: no TensorFlow, librosa or pandas at predict time."""
    repo = pipeline[0]
    code = ("import sys\nfrom ser.app.cli import main\ncode = main(['predict', '-q', '--model', sys.argv[1], sys.argv[2]])\n"
            "heavy = {'librosa', 'sklearn', 'pandas', 'numba', 'tensorflow', 'keras', 'opensmile', 'scipy.signal'}\n"
            "print(code, sorted((set(sys.modules) | {m.split('.')[0] for m in sys.modules}) & heavy))")
    run = sh(repo, sys.executable, "-c", code, str(repo / "models"), str(real_clips(repo, 1)[0]))
    assert run.stdout.strip().splitlines()[-1] == "0 []", run.stdout + run.stderr


def test_a_stale_or_missing_encoder_is_refused_in_one_line(pipeline, tmp_path):
    repo = pipeline[0]
    models = tmp_path / "models"
    shutil.copytree(repo / "models", models)
    shutil.copy(models / "model.onnx", models / "encoder.onnx")   # a foreign ONNX file
    clip = str(real_clips(repo, 1)[0])
    run = sh(tmp_path, sys.executable, "-m", "ser", "predict", "-q", "--model", str(models), clip, check=False)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith(f"error: {models / 'encoder.onnx'}: not the encoder that the embeddings or bundle.json")
    assert run.stderr.count("\n") == 1
    (models / "encoder.onnx").unlink()
    run = sh(tmp_path, sys.executable, "-m", "ser", "predict", "-q", "--model", str(models), clip, check=False)
    assert run.returncode == 2
    assert run.stderr == f"error: {models / 'encoder.onnx'}: not found (rebuild it with `dvc repro train`)\n"


def test_evaluate_cli_on_a_corpus_folder(pipeline, tmp_path):
    repo = pipeline[0]
    run = sh(tmp_path, sys.executable, "-m", "ser", "evaluate", str(repo / "data/raw/savee"), "--corpus", "savee",
             "-q", "--model", str(repo / "models"), "--confusion", str(tmp_path / "cm"), "--json", str(tmp_path / "m.json"))
    assert "360 clips scored, 0 failed, 0 without speech" in run.stdout
    assert "normalization: speaker (3 speakers from the file names)" in run.stdout
    assert f"confusion matrix: {tmp_path / 'cm.png'}" in run.stdout and (tmp_path / "cm.png").stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cm.png", "m.json"]   # nothing else written
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["clips"] == 360 and set(metrics["per_class"]) == {
        "angry", "disgust", "fearful", "happy", "neutral", "sad", "surprised"}


def test_teammate_pulls_the_model_and_evaluates_without_training(scratch, tmp_path):
    """A model shared through a DVC remote is usable by `python -m ser` with no training run."""
    remote = tmp_path / "remote"
    sh(scratch, "dvc", "remote", "add", "--local", "scratch", str(remote))
    sh(scratch, "dvc", "push", "-q", "-r", "scratch", "train")
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(scratch), str(clone))
    sh(clone, "dvc", "remote", "add", "--local", "-d", "scratch", str(remote))
    sh(clone, "dvc", "pull", "-q", "train")
    assert not (clone / "data/features").exists()  # nothing but the model came over
    run = sh(clone, sys.executable, "-m", "ser", "evaluate", str(scratch / "data/raw/savee"), "--corpus", "savee", "-q")
    assert "360 clips scored, 0 failed, 0 without speech" in run.stdout
