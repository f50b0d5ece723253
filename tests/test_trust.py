"""Answers to trust on any input: no speech, any level, any channel, any folder layout, any
bundle, any output. Each case here was a confident wrong answer, a silent loss or a traceback."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ser.app.predict import Predictor, emotion_names, group_key
from ser.audio import cleaning, decode, dsp
from ser.bundle.format import content_fingerprint, load_bundle
from ser.core.errors import DataError

from .conftest import checkout_env, write_speech

SR = 16000


def ser_cli(*argv, **kwargs):
    return subprocess.run([sys.executable, "-m", "ser", *map(str, argv)], capture_output=True, text=True,
                          env=checkout_env(), **kwargs)


# 1. No emotion where there is no voice; probabilities that say how sure they are.

def test_no_speech_in_every_format(tiny_model, tmp_path):
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "noise.wav", 0.3 * rng.standard_normal(2 * SR), SR)
    sf.write(tmp_path / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * np.arange(2 * SR) / SR), SR)
    write_speech(tmp_path / "voice.wav")
    files = [tmp_path / "noise.wav", tmp_path / "tone.wav", tmp_path / "voice.wav"]
    run = ser_cli("predict", *files, "--model", tiny_model, "--format", "json", "-q")
    assert run.returncode == 0, run.stderr
    rows = {os.path.basename(r["file"]): r for r in json.loads(run.stdout)}
    for name in ("noise.wav", "tone.wav"):
        assert rows[name]["result"] == "no speech" and rows[name]["emotion"] is None
        assert rows[name]["probabilities"] is None and rows[name]["top_k"] == [] and rows[name]["speech_s"] < 0.3
    assert rows["voice.wav"]["speech_s"] > 1 and rows["voice.wav"]["result"] != "no speech"
    csv_run = ser_cli("predict", *files, "--model", tiny_model, "--format", "csv", "-q")
    lines = csv_run.stdout.splitlines()
    assert lines[0].startswith("file,result,emotion,confidence,speech_s,p_angry")
    assert lines[1].split(",")[1:4] == ["no speech", "", ""]
    table = ser_cli("predict", *files, "--model", tiny_model, "-q").stdout
    assert [line.split()[1:3] for line in table.splitlines()[2:4]] == [["no", "speech"], ["no", "speech"]]


def test_uncertain_answers_still_list_their_top_k(model_copy, tmp_path):
    """Below the bundle's calibration.uncertain_below the result is `uncertain`, with its
    top-k; at or above it, the emotion."""
    write_speech(tmp_path / "voice.wav")
    for threshold in (0.0, 1.0):
        model_copy(tmp_path / str(threshold), uncertain_below=threshold)
        run = ser_cli("predict", tmp_path / "voice.wav", "--model", tmp_path / str(threshold), "--format", "json",
                      "--top-k", "3", "-q")
        [row] = json.loads(run.stdout)
        assert run.returncode == 0 and row["result"] == ("uncertain" if threshold else row["emotion"])
        assert row["emotion"] in load_bundle(tmp_path / str(threshold)).classes
        assert len(row["top_k"]) == 3 and row["top_k"][0]["emotion"] == row["emotion"]


def test_the_calibration_matches_how_a_clip_was_normalized(tmp_path):
    """A lone file (no other clip of its voice), a few clips (a reference, a small folder) and a
    whole speaker each get their own temperature and threshold."""
    from ser.bundle.format import Bundle, Normalization

    ways = {"file": {"temperature": 2.5, "uncertain_below": 0.7}, "reference": {"temperature": 2.0,
                                                                                  "uncertain_below": 0.6},
            "group": {"temperature": 1.5, "uncertain_below": 0.5}}
    bundle = Bundle(classes=("a", "b"), label_map={}, analysis=None, calibration={"group_min_clips": 10, **ways},
                    normalization=Normalization("speaker", 2, 10, "training", {}), shapes={}, train={}, seed=0,
                    weights_sha256="", filterbanks_sha256="", bundle_sha256="", content={})
    assert bundle.way(0) == ways["file"]
    assert bundle.way(1) == bundle.way(9) == ways["reference"]
    assert bundle.way(10) == bundle.way(60) == ways["group"]
    global_bundle = dataclasses.replace(bundle, normalization=Normalization("global", 2, 10, "training", {}))
    assert global_bundle.way(0) == ways["group"]


# 2. The same voice gets the same answer at any level, on any channel.

def test_cleaning_is_level_invariant():
    y = _speech_array()
    reference = cleaning.clean(y, SR, 30, 0.3, -23)
    assert 20 * np.log10(np.sqrt(np.mean(reference.astype(np.float64) ** 2))) == pytest.approx(-23, abs=0.01)
    for gain_db in (-60, -50, -30, -20, -10, -3, 0):
        out = cleaning.clean(y * np.float32(10 ** (gain_db / 20)), SR, 30, 0.3, -23)
        assert np.allclose(out, reference, atol=1e-5), gain_db
    loud = cleaning.normalize_level(np.array([0.001, 0.5, -0.001], np.float32), -3)
    assert np.abs(loud).max() == pytest.approx(cleaning.PEAK_LIMIT)   # a peak never goes past full scale


def _speech_array():
    from .conftest import SPEECH_SAMPLES

    y, sr = sf.read(SPEECH_SAMPLES[0], dtype="float32")
    return dsp.resample(y, sr, SR)


@pytest.mark.parametrize("subtype, base_db, tolerance", [("FLOAT", -25, 1e-4), ("PCM_16", 0, 0.02)])
def test_one_voice_same_answer_from_minus_30_to_0_db(tiny_model, tmp_path, subtype, base_db, tolerance):
    """Float files, from a quiet recording (peak about -28 dBFS, as RAVDESS's; down to -58
    dBFS): the only difference is float rounding. 16-bit files, from a full-scale one: at -30
    dB a file keeps 11 of its 16 bits, and the quantisation noise (about -66 dB re its peak)
    moves the probabilities by a few thousandths; 0.02 leaves room without hiding a level effect
    (before loudness normalization, the same clip moved by up to 0.4 and changed label). A
    16-bit file at -58 dBFS keeps 6 bits: that is lost information, not a level effect."""
    predictor = Predictor(tiny_model)
    files = [write_speech(tmp_path / f"{g}.wav", index=1, gain_db=g + base_db, subtype=subtype)
             for g in (-30, -20, -10, 0)]
    results = predictor.analyse(files, grouping="file", progress=False)
    probs = np.stack([r.probabilities.mean(0) for r in results])
    assert (probs.argmax(1) == probs[-1].argmax()).all()
    assert np.abs(probs - probs[-1]).max() < tolerance


def test_the_voice_channel_of_a_multichannel_file(tiny_model, tmp_path):
    """A 6-channel file with the voice on channel 3 and faint noise elsewhere gets the answer
    of that channel alone (averaging diluted it 6-fold with noise)."""
    voice, rate = sf.read(write_speech(tmp_path / "mono.wav", index=2), dtype="float32")
    rng = np.random.default_rng(0)
    channels = 0.003 * rng.standard_normal((len(voice), 6)).astype(np.float32)
    channels[:, 3] = voice
    sf.write(tmp_path / "six.wav", channels, rate, subtype="FLOAT")
    sf.write(tmp_path / "mono.wav", voice, rate, subtype="FLOAT")
    assert np.array_equal(decode.load(tmp_path / "six.wav", SR), decode.load(tmp_path / "mono.wav", SR))
    mono, six = Predictor(tiny_model).analyse([tmp_path / "mono.wav", tmp_path / "six.wav"], grouping="file",
                                              progress=False)
    assert np.allclose(mono.probabilities, six.probabilities, atol=1e-6)


# 3. A folder named after an emotion is never a speaker.

def test_emotion_folders_are_not_normalization_groups(tiny_model, tmp_path):
    bundle = load_bundle(tiny_model)
    names = emotion_names(bundle)
    assert {"angry", "calm", "pleasant_surprise"} <= names
    assert group_key("corpus/spk1/Angry/a.wav", "folder", names) == "corpus/spk1"
    assert group_key("corpus/spk1/sadness/x/a.wav", "folder", names) == "corpus/spk1/sadness/x"
    assert group_key("corpus/spk1/a.wav", "folder", names) == "corpus/spk1"
    for i, emotion in enumerate(["angry", "Happy", "SAD", "neutral"]):
        write_speech(tmp_path / "emofolders" / emotion / f"{i}.wav", index=i)
    run = ser_cli("predict", tmp_path / "emofolders", "--model", tiny_model, "-q")
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("note: 4 folders named after an emotion") == 1
    assert run.stdout.splitlines()[0] == (f"normalization: speaker ({tmp_path / 'emofolders'}: 4 clips, 29% own "
                                          "statistics; the rest from training statistics)")


# 4. An edited bundle is refused in one line.

def edit(model_dir, change):
    path = model_dir / "bundle.json"
    bundle = json.loads(path.read_text())
    change(bundle)
    path.write_text(json.dumps(bundle))


def rehash(bundle):
    bundle["bundle_sha256"] = content_fingerprint(bundle)


@pytest.mark.parametrize("name, change, message", [
    ("classes swapped", lambda b: b["classes"].reverse(), "content does not match its fingerprint"),
    ("class added", lambda b: b["classes"].append("bored"), "content does not match its fingerprint"),
    ("class dropped", lambda b: b["classes"].pop(), "label_map must map labels"),   # surprise -> surprised
    ("class dropped", lambda b: b["classes"].remove("disgust"), "content does not match its fingerprint"),
    ("statistics", lambda b: b["normalize"]["priors"]["features"]["mean"].__setitem__(0, 3.0),
     "content does not match its fingerprint"),
    ("temperature", lambda b: b["calibration"]["file"].__setitem__("temperature", 1.2),
     "content does not match its fingerprint"),
    ("mode", lambda b: b["normalize"].__setitem__("mode", "bogus"), "normalize.mode must be one of"),
    ("prior_clips", lambda b: b["normalize"].__setitem__("prior_clips", -5), "normalize.prior_clips must be >= 0"),
    ("statistics length", lambda b: b["normalize"]["priors"]["features"]["var"].pop(),
     "normalize.priors.features.var must be 14 finite numbers >= 0"),
    ("negative variance", lambda b: b["normalize"]["priors"]["features"]["var"].__setitem__(0, -1),
     "normalize.priors.features.var must be 14 finite numbers >= 0"),
    ("missing key", lambda b: b.pop("speech"), "speech.threshold is missing"),
    ("input dropped", lambda b: b["inputs"].pop(), "shapes must give one shape per input"),
    ("threshold", lambda b: b["calibration"]["group"].__setitem__("uncertain_below", 2),
     "calibration.group.uncertain_below must be <= 1"),
    ("label map", lambda b: b["label_map"].__setitem__("calm", "bored"), "label_map must map labels"),
    ("classes duplicated", lambda b: b.__setitem__("classes", ["sad", "sad"]), "classes must be a list of at least two"),
])
def test_every_edit_of_the_bundle_is_refused(model_copy, name, change, message):
    model = model_copy()
    edit(model, change)
    with pytest.raises(DataError) as err:
        Predictor(model)
    assert str(err.value).startswith(f"{model / 'bundle.json'}: ") and message in str(err.value), name
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("change", [
    lambda b: b["classes"].reverse(),                                   # angry answered as sad
    lambda b: b["normalize"]["priors"]["features"]["mean"].__setitem__(0, 3.0),
    lambda b: b["calibration"]["file"].__setitem__("temperature", 0.1),
])
def test_a_rehashed_edit_is_refused_by_the_model_file_on_every_backend(model_copy, change):
    """Whoever edits the bundle and recomputes its fingerprint still meets the stamp of
    model.onnx and of model.keras (issue 21 #1: the Keras path, or a bundle whose model.onnx was
    deleted, accepted the edit)."""
    model = model_copy()
    edit(model, lambda b: (change(b), rehash(b)))
    with pytest.raises(DataError, match=r"model.onnx: its weights are not the model described by"):
        Predictor(model, backend="onnx").check()
    with pytest.raises(DataError, match=r"model.keras: its weights are not the model described by"):
        Predictor(model, backend="keras").check()
    (model / "model.onnx").unlink()
    with pytest.raises(DataError, match=r"model.keras: its weights are not the model described by"):
        Predictor(model).check()


def test_an_unedited_bundle_loads_on_every_backend(model_copy):
    model = model_copy()
    for backend in ("onnx", "keras"):
        Predictor(model, backend=backend).check()


def test_a_foreign_onnx_with_the_real_stamps_is_refused(model_copy, egemaps_model, tmp_path):
    """Stamps copied into another network (other inputs): one line, not an ONNX Runtime error."""
    import onnx

    model_copy(tmp_path / "real")
    real = onnx.load(str(tmp_path / "real" / "model.onnx"))
    other = onnx.load(str(egemaps_model / "model.onnx"))   # read only: the other network
    other.ClearField("metadata_props")
    other.metadata_props.extend(real.metadata_props)
    onnx.save(other, str(tmp_path / "real" / "model.onnx"))
    with pytest.raises(DataError, match=r"model.onnx: its inputs or outputs are not the ones .*bundle.json describes "
                                        r"\(egemaps\); a foreign file"):
        Predictor(tmp_path / "real", backend="onnx").check()


# 5. Nothing skipped or lost without a word; every output failure is one line.

def test_a_full_disk_on_stdout_is_one_line(tiny_model, tmp_path):
    write_speech(tmp_path / "voice.wav")
    with open("/dev/full", "w") as full:
        run = subprocess.run([sys.executable, "-m", "ser", "predict", str(tmp_path / "voice.wav"), "--model",
                              str(tiny_model), "-q"], stdout=full, stderr=subprocess.PIPE, text=True, env=checkout_env())
    assert run.returncode == 2
    assert run.stderr == "error: cannot write the output to stdout (No space left on device)\n"


def test_a_file_name_that_is_not_utf8(tiny_model, tmp_path):
    shutil.copy(write_speech(tmp_path / "x.wav"), os.fsencode(tmp_path) + b"/caf\xe9.wav")
    run = subprocess.run([sys.executable, "-m", "ser", "predict", str(tmp_path), "--model", str(tiny_model), "-q",
                          "--format", "csv"], capture_output=True, env=checkout_env())
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[1].startswith(os.fsencode(tmp_path) + b"/caf\xe9.wav,") and b"cannot decode" not in run.stderr
    assert lines[1].split(b",")[1:] == lines[2].split(b",")[1:]   # the same audio, the same answer


def test_a_truncated_wav_is_labelled_with_a_warning(tiny_model, tmp_path):
    data = write_speech(tmp_path / "whole.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[:len(data) // 2])
    run = ser_cli("predict", tmp_path / "cut.wav", "--model", tiny_model, "-q")
    assert run.returncode == 0
    [warning] = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert warning.startswith(f"warning: {tmp_path / 'cut.wav'}: truncated")


def _tiny_training_project(root):
    """What the train stage reads, for 24 clips of 4 speakers: params.yaml (the linear model on
    the feature vector: one "epoch", seconds less than a network), data/features, data/egemaps
    and the cv and loco metrics."""
    import pandas as pd
    import yaml

    from .conftest import tiny_model_params

    params = tiny_model_params(inputs=("features",), model="linear")
    n_classes, rng = len(params["labels"]["classes"]), np.random.default_rng(0)
    table = pd.DataFrame({"speaker": [f"s{i % 4}" for i in range(24)], "corpus": "c", "augmentation": "none",
                          "fold": [i % 4 for i in range(24)], "source": range(24)})
    (root / "data" / "features").mkdir(parents=True)
    (root / "data" / "egemaps").mkdir(parents=True)
    (root / "metrics").mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    table.to_csv(root / "data" / "features" / "clips.csv", index=False)
    np.savez(root / "data" / "features" / "features.npz", labels=np.arange(24) % n_classes,
             features=rng.normal(0, 1, (24, 14)).astype(np.float32))
    np.savez(root / "data" / "egemaps" / "egemaps.npz", functionals=rng.normal(0, 1, (24, 88)).astype(np.float32),
             source=np.arange(24))
    (root / "metrics" / "cv.json").write_text(json.dumps({"calibration": {"group": {"temperature": 1.0}}}))
    way = {"temperature": 1.0, "uncertain_below": 0.5}
    (root / "metrics" / "calibration.json").write_text(json.dumps({"file": way, "reference": way}))


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_training_curves_appear_whole_or_not_at_all(tmp_path, monkeypatch):
    """dvclive writes its files epoch by epoch; the train stage writes them to a scratch folder
    and moves them into place at the end, and DVC keeps the previous ones until then (persist):
    an interrupted run leaves the last complete curves, never step 13 of 20."""
    import yaml

    from dvclive import keras as dvclive_keras
    from ser.core.files import publish_tree
    from stages import train

    from .conftest import ROOT

    target = tmp_path / "dvclive"
    (target / "plots" / "metrics").mkdir(parents=True)
    (target / "plots" / "metrics" / "loss.tsv").write_text("old\n")
    (target / "metrics.json").write_text('{"step": 19}')
    scratch = tmp_path / ".dvclive-x"
    (scratch / "plots" / "metrics").mkdir(parents=True)
    (scratch / "plots" / "metrics" / "loss.tsv").write_text("new\n")
    (scratch / "metrics.json").write_text('{"step": 20}')
    publish_tree(scratch, target, ["plots", "metrics.json"])
    assert (target / "plots" / "metrics" / "loss.tsv").read_text() == "new\n"
    assert (target / "metrics.json").read_text() == '{"step": 20}' and not scratch.exists()
    outs = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train"]["outs"]
    flags = {next(iter(o)): o[next(iter(o))] for o in outs if isinstance(o, dict)}
    for path in ("dvclive/plots", "dvclive/metrics.json", "metrics/train.json"):
        assert flags[path].get("persist") is True, path

    # The train stage itself: interrupted once its epoch's curves were written, then run whole.
    project = tmp_path / "project"
    _tiny_training_project(project)
    monkeypatch.chdir(project)
    shutil.copytree(target, project / "dvclive")
    previous = _tree(project / "dvclive")
    written = []

    class Interrupted(dvclive_keras.DVCLiveCallback):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            written.append(_tree(project / self.live.dir))   # this epoch's curves, on disk
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(dvclive_keras, "DVCLiveCallback", Interrupted)
        with pytest.raises(SystemExit) as stopped:
            train.main()
    assert stopped.value.code == 130
    assert any(name.endswith("loss.tsv") for name in written[0])   # dvclive did write the curves ...
    assert _tree(project / "dvclive") == previous                  # ... but not where DVC tracks them
    assert not (project / "models").exists()
    leftovers = set(project.glob(".dvclive-*"))
    saved = []   # the export (seconds of ONNX conversion) is not what this test is about
    monkeypatch.setattr(train, "save_trained_model", lambda folder, model, *args, **kw: saved.append(model) or "0" * 64)
    train.main()
    curves = _tree(project / "dvclive")
    assert json.loads(curves["metrics.json"])["step"] == 0     # one epoch: step 0
    loss = [name for name in curves if name.startswith("plots/") and name.endswith("loss.tsv")]
    assert loss and all(len(curves[name].decode().splitlines()) == 2 for name in loss)   # header + 1 epoch
    assert "plots/metrics/loss.tsv" not in curves              # the previous run's curves were replaced whole
    assert set(project.glob(".dvclive-*")) == leftovers        # this run's scratch folder is gone
    assert len(saved) == 1 and (project / "metrics" / "train.json").is_file()
