import numpy as np
import pandas as pd
import pytest

from ser.model.network import build_model, input_names, model_inputs, set_determinism
from ser.model.training import (
    distribution_strategy,
    fit,
    make_batches,
    sample_weights,
    spec_augment,
)

from .conftest import softmax_reference

SHAPES = {"features": (20,), "spectrogram": (16, 24), "egemaps": (10,)}


def data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    return {"features": rng.normal(labels[:, None], 1.0, (n, 20)).astype(np.float32),
            "spectrogram": rng.random((n, 16, 24)).astype(np.float32),
            "egemaps": rng.normal(labels[:, None], 1.0, (n, 10)).astype(np.float32)}, labels


def cfg(**changes):
    return {"lr": 0.01, "filters": 4, "dense_units": 8, "dropout": 0.1, "epochs": 2, "batch_size": 8,
            "specaugment": True, "specaugment_masks": 1, "mixup": 0.2, **changes}


@pytest.mark.parametrize("names", [["features"], ["spectrogram"], ["egemaps"], ["features", "egemaps"],
                                   ["features", "spectrogram", "egemaps"]])
def test_any_subset_of_inputs_builds(names):
    set_determinism(0)
    arrays, _ = data()
    model = build_model({n: SHAPES[n] for n in names}, 3, cfg())
    assert input_names(model) == names
    probs = model.predict(model_inputs(model, arrays), verbose=0)
    assert probs.shape == (32, 3)
    # The output is a softmax of the fused branches' dense layer, recomputed here in NumPy ...
    np.testing.assert_allclose(probs, softmax_reference(model, model_inputs(model, arrays)), atol=1e-5)
    # ... and every named input reaches it: changing one input alone changes the probabilities.
    for name in names:
        changed = {**arrays, name: arrays[name][::-1].copy()}
        assert np.abs(model.predict(model_inputs(model, changed), verbose=0) - probs).max() > 1e-4, name


def test_tiny_inputs_still_build():
    # One feature (e.g. featurize.features=[zcr], stats=[mean]) and a one-frame image: pooling pads.
    set_determinism(0)
    model = build_model({"features": (1,), "spectrogram": (8, 1)}, 3, cfg())
    probs = model.predict({"features": np.zeros((2, 1), np.float32),
                           "spectrogram": np.zeros((2, 8, 1), np.float32)}, verbose=0)
    assert probs.shape == (2, 3)


def fit_once(seed):
    arrays, labels = data()
    model = fit(arrays, labels, np.ones(len(labels), np.float32), 3, cfg(), seed)
    return [w.copy() for w in model.get_weights()]


@pytest.mark.slow
def test_training_is_deterministic():
    first, second = fit_once(5), fit_once(5)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, b) for a, b in zip(first, fit_once(6)))


def test_one_gpu_or_none_trains_without_a_distribution_strategy(capsys):
    assert distribution_strategy(0) is None and distribution_strategy(1) is None
    assert distribution_strategy([]) is None and distribution_strategy(["/physical_device:GPU:0"]) is None
    assert capsys.readouterr().out == ""


# Run in a fresh interpreter: the CPU must be split into two logical devices before TensorFlow
# initialises. ``fit`` is the repo's; the only stand-in is the device list handed to the repo's
# ``distribution_strategy`` (the two logical CPUs where a machine would have two GPUs), and
# MirroredStrategy() with no GPU visible mirrors over all logical CPUs.
MIRRORED_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf

tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)
from ser.model import training

real = training.distribution_strategy
used = []

def two_devices(gpus=None):
    used.append(real(tf.config.list_logical_devices("CPU")))
    return used[-1]

def one_device(gpus=None):
    used.append(real(1))
    return used[-1]

data = np.load(sys.argv[1])
arrays, labels = {"egemaps": data["egemaps"]}, data["labels"]
cfg = json.loads(sys.argv[2])
out = {}
for name, choose in [("mirrored", two_devices), ("single", one_device)]:
    training.distribution_strategy = choose
    model = training.fit(arrays, labels, np.ones(len(labels), np.float32), 3, cfg, 5)
    kernel = model.get_layer("emotion").kernel.value
    out[name] = {
        "strategy": type(used[-1]).__name__,
        "replicas": used[-1].num_replicas_in_sync if used[-1] is not None else 1,
        "model_strategy_is_used": model.distribute_strategy is used[-1],
        "kernel_devices": sorted(v.device for v in getattr(kernel, "values", [kernel])),
        "probs": training.predict_proba(model, arrays).tolist(),
    }
print(json.dumps(out))
"""


@pytest.mark.slow
def test_mirrored_strategy_on_two_devices_trains_like_one_device(tmp_path):
    """The MirroredStrategy path of ``fit`` on two (logical CPU) devices, against one device.

    The model has no BatchNormalization and no dropout, and one batch per epoch: under
    MirroredStrategy BatchNormalization uses each replica's half batch, dropout masks are drawn
    per replica and Keras visits a PyDataset's batches in another order, so those differ by
    design (a 7e-3 difference in probabilities for the full network). What is left must be the
    same training: each replica takes half of every batch and the gradients are summed across
    replicas. Tolerance 1e-5: the two halves' gradients are added in another order than one
    batch's, float32 rounding (observed differences ~1e-7)."""
    import json
    import subprocess
    import sys

    from .conftest import checkout_env

    arrays, labels = data()
    np.savez(tmp_path / "data.npz", egemaps=arrays["egemaps"], labels=labels)
    settings = cfg(dropout=0.0, epochs=3, batch_size=len(labels))   # mixup on: batches differ per epoch
    run = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path / "data.npz"), json.dumps(settings)],
                         cwd=tmp_path, capture_output=True, text=True, env=checkout_env(CUDA_VISIBLE_DEVICES=""))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "training on 2 GPUs with MirroredStrategy" in run.stdout
    out = json.loads(run.stdout.strip().splitlines()[-1])
    mirrored, single = out["mirrored"], out["single"]
    assert (mirrored["strategy"], mirrored["replicas"], mirrored["model_strategy_is_used"]) == ("MirroredStrategy", 2, True)
    assert [d.rsplit("/", 1)[-1] for d in mirrored["kernel_devices"]] == ["device:CPU:0", "device:CPU:1"]
    assert (single["strategy"], single["replicas"]) == ("NoneType", 1)
    mirrored_probs, single_probs = np.array(mirrored["probs"]), np.array(single["probs"])
    assert mirrored_probs.shape == (len(labels), 3)
    np.testing.assert_allclose(mirrored_probs, single_probs, rtol=0, atol=1e-5)
    set_determinism(5)   # fit's seed: the very network both runs started from
    untrained = build_model({"egemaps": SHAPES["egemaps"]}, 3, settings).predict(arrays["egemaps"], verbose=0)
    assert np.abs(single_probs - untrained).max() > 1e-3   # both runs trained: equal is not trivially so


SAVE_SCRIPT = """
import sys
from ser.bundle.keras_file import write_keras
from ser.model.network import build_model, set_determinism
from tests.test_model import SHAPES, cfg

set_determinism(0)
write_keras(build_model(SHAPES, 3, cfg()), sys.argv[1])
"""


@pytest.mark.slow
def test_keras_saves_of_one_model_are_byte_identical(tmp_path):
    """A rerun of training saves the same network from a new process, seconds later. Keras
    stamps the time (zip entries, ``metadata.json``'s ``date_saved``) and links shared objects
    by their memory address; ser.bundle.keras_file.write_keras makes the file canonical, so a rerun leaves
    models/model.keras unchanged."""
    import json
    import subprocess
    import sys
    import time
    import zipfile

    import keras

    from ser.bundle.keras_file import write_keras

    from .conftest import ROOT, checkout_env

    paths = [tmp_path / "a" / "model.keras", tmp_path / "b" / "model.keras"]
    for path in paths:   # the second save starts well over a second after the first
        run = subprocess.run([sys.executable, "-c", SAVE_SCRIPT, str(path)], cwd=ROOT, capture_output=True,
                             text=True, env=checkout_env())
        assert run.returncode == 0, run.stderr[-3000:]
        time.sleep(1.1)   # zip, JSON and HDF5 times count whole seconds
    assert paths[0].read_bytes() == paths[1].read_bytes()
    with zipfile.ZipFile(paths[0]) as archive:
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        assert "date_saved" not in json.loads(archive.read("metadata.json"))
        assert '"shared_object_id": 1' in archive.read("config.json").decode()   # the case is covered
    set_determinism(0)
    model = build_model(SHAPES, 3, cfg())   # the network the scripts saved
    write_keras(model, tmp_path / "c" / "model.keras")   # and in this process, from the same object twice
    time.sleep(1.1)
    write_keras(model, tmp_path / "d" / "model.keras")
    assert (tmp_path / "c" / "model.keras").read_bytes() == (tmp_path / "d" / "model.keras").read_bytes()
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["model.keras"]   # no temporary file left
    arrays, _ = data()
    loaded = keras.models.load_model(paths[0], safe_mode=True, compile=False)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), loaded.get_weights()))
    np.testing.assert_array_equal(model.predict(model_inputs(model, arrays), verbose=0),
                                  loaded.predict(model_inputs(loaded, arrays), verbose=0))


def test_saved_model_round_trip_with_safe_mode(tmp_path):
    import keras
    set_determinism(0)
    arrays, _ = data()
    model = build_model(SHAPES, 3, cfg())
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True, compile=False)
    assert np.allclose(model.predict(model_inputs(model, arrays), verbose=0),
                       loaded.predict(model_inputs(loaded, arrays), verbose=0), atol=1e-6)


def test_sample_weights_balance_speakers_and_corpora():
    table = pd.DataFrame({"speaker": ["t1"] * 60 + ["t2"] * 60 + ["r1"] * 10 + ["r2"] * 10 + ["r3"] * 10,
                          "corpus": ["tess"] * 120 + ["ravdess"] * 30})
    assert np.all(sample_weights(table, "none") == 1)
    w = sample_weights(table, "speaker")
    totals = pd.Series(w).groupby(table.speaker).sum()
    assert np.allclose(totals, totals.iloc[0]) and w.mean() == pytest.approx(1)
    w = sample_weights(table, "corpus")
    by_corpus = pd.Series(w).groupby(table.corpus).sum()
    assert by_corpus["tess"] == pytest.approx(by_corpus["ravdess"])
    by_speaker = pd.Series(w).groupby(table.speaker).sum()
    assert by_speaker["r1"] == pytest.approx(by_speaker["r3"]) and by_speaker["t1"] == pytest.approx(1.5 * by_speaker["r1"])


def test_the_svm_baseline_learns_from_the_original_clips_only():
    """``baseline_predictions``: eGeMAPS + RBF SVM (``ser.model.svm``) trained on the
    un-augmented clips among the training rows. Separable functionals are labelled right, and
    augmentation copies (here the same functionals with wrong labels) never reach the SVM."""
    from ser.model.training import baseline_predictions

    rng = np.random.default_rng(0)
    n = 90
    labels = np.arange(n) % 3
    egemaps = (rng.normal(0, 0.3, (n, 6)) + 2 * np.eye(3, 6)[labels]).astype(np.float32)
    data = {"egemaps": np.concatenate([egemaps, egemaps]), "labels": np.concatenate([labels, (labels + 1) % 3])}
    table = pd.DataFrame({"speaker": [f"s{i % 5}" for i in range(2 * n)], "corpus": "c",
                          "augmentation": ["none"] * n + ["pitch"] * n})
    train, test = np.concatenate([np.arange(60), n + np.arange(60)]), np.arange(60, n)
    params = {"seed": 0, "normalize": {"prior_clips": 10}, "baseline": {"svm_c": 1.0}}
    np.testing.assert_array_equal(baseline_predictions(data, table, train, test, params), labels[test])


def test_batches_are_reproducible_and_mix_labels():
    arrays, labels = data(n=20)
    weights = np.ones(20, np.float32)
    one = make_batches(arrays, labels, weights, 3, cfg(batch_size=8), seed=3)
    two = make_batches(arrays, labels, weights, 3, cfg(batch_size=8), seed=3)
    assert len(one) == 3
    x1, y1, w1 = one[1]
    x2, y2, w2 = two[1]
    assert all(np.array_equal(x1[k], x2[k]) for k in x1) and np.array_equal(y1, y2)
    assert np.allclose(y1.sum(axis=1), 1) and (y1.max(axis=1) >= 0.5).all() and (y1.max(axis=1) < 1).any()
    assert sorted(np.concatenate([one[i][2] for i in range(3)])) == [1.0] * 20
    one.on_epoch_end()
    assert not np.array_equal(one[1][1], y1)   # a new shuffle every epoch
    plain = make_batches(arrays, labels, weights, 3, cfg(batch_size=20, mixup=0, specaugment=False), seed=3)[0]
    assert set(np.unique(plain[1])) == {0.0, 1.0}
    assert np.array_equal(np.sort(plain[0]["features"], axis=0), np.sort(arrays["features"], axis=0))


def runs(flags) -> list[tuple[int, int]]:
    """``(start, width)`` of each run of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), (ends - starts).tolist()))


@pytest.mark.parametrize("masks", [1, 2])
def test_spec_augment_zeroes_whole_bands_and_whole_frame_ranges(masks):
    """Each image gets ``masks`` frequency masks (whole bands, every frame) and ``masks`` time
    masks (whole frames, every band) of at most 15% of the bands and 20% of the frames (here 3
    of 20 bands, 8 of 40 frames); nothing else changes, and the same seed gives the same masks."""
    original = np.random.default_rng(7).uniform(0.5, 1.5, (300, 20, 40)).astype(np.float32)   # no zero of its own
    images = original.copy()
    spec_augment(images, np.random.default_rng(0), masks=masks)
    band_runs, frame_runs = [], []   # per image: the (start, width) of each zeroed stripe
    for image, before in zip(images, original):
        zero = image == 0
        np.testing.assert_array_equal(image[~zero], before[~zero])   # in place, and only zeroes
        bands, frames = zero.all(axis=1), zero.all(axis=0)
        # the zeroes are exactly whole bands and whole frames: no scattered cells
        np.testing.assert_array_equal(zero, bands[:, None] | frames[None, :])
        band_runs.append(runs(bands))
        frame_runs.append(runs(frames))
    for stripes, widest in ((band_runs, 3), (frame_runs, 8)):
        # at most `masks` stripes per image (overlapping masks merge), each mask at most `widest` wide
        assert max(len(s) for s in stripes) == masks
        assert max(sum(w for _, w in s) for s in stripes) <= widest * masks
        assert sum(len(s) > 0 for s in stripes) > 0.5 * len(stripes)   # masks do happen (width 0 is allowed)
        widths = {w for s in stripes for _, w in s}
        if masks == 1:   # one mask per axis: each stripe is one mask, of every width from 1 to the maximum
            assert sorted(widths) == list(range(1, widest + 1))
        starts = {start for s in stripes for start, _ in s}
        ends = {start + w for s in stripes for start, w in s}
        assert 0 in starts and (20 if widest == 3 else 40) in ends   # anywhere, up to either edge
    again = original.copy()
    spec_augment(again, np.random.default_rng(0), masks=masks)
    np.testing.assert_array_equal(again, images)                  # same seed, same masks
    other = original.copy()
    spec_augment(other, np.random.default_rng(1), masks=masks)
    assert not np.array_equal(other, images)
    untouched = original.copy()
    spec_augment(untouched, np.random.default_rng(0), masks=0)
    np.testing.assert_array_equal(untouched, original)            # masks: 0 is no masking


def test_onnx_exports_of_one_model_are_byte_identical(tmp_path):
    """tf2onnx numbers helper nodes in a run-dependent order; ser.core.onnx.write_onnx makes the file
    canonical, so a rerun leaves models/ (and `git status`, `dvc status`) unchanged."""
    import onnxruntime as ort

    from ser.core.onnx import write_onnx

    paths = []
    for i in range(2):   # the second model's Keras layer names differ (_1 suffixes): same bytes anyway
        set_determinism(0)
        model = build_model({"features": (20,), "egemaps": (10,)}, 3, cfg())
        arrays, _ = data(4)
        example = {"features": arrays["features"][:1], "egemaps": arrays["egemaps"][:1]}
        paths.append(tmp_path / f"m{i}.onnx")
        write_onnx(model, example, paths[-1], {"weights_sha256": "x"})
    assert paths[0].read_bytes() == paths[1].read_bytes()
    session = ort.InferenceSession(str(paths[0]), providers=["CPUExecutionProvider"])
    feeds = {i.name: arrays[i.name.split(":")[0]] for i in session.get_inputs()}
    np.testing.assert_allclose(session.run(None, feeds)[0], model.predict(feeds, verbose=0), atol=1e-5)
