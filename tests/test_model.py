import numpy as np
import pandas as pd
import pytest

from ser.model import build_model, input_names, model_inputs, set_determinism
from ser.training import distribution_strategy, fit, make_batches, sample_weights, spec_augment

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
    assert probs.shape == (32, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


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


def test_training_is_deterministic():
    first, second = fit_once(5), fit_once(5)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, b) for a, b in zip(first, fit_once(6)))



def test_one_gpu_or_none_trains_without_a_distribution_strategy(capsys):
    assert distribution_strategy(0) is None and distribution_strategy(1) is None
    assert distribution_strategy([]) is None and distribution_strategy(["/physical_device:GPU:0"]) is None
    tf = set_determinism(0)
    if len(tf.config.list_physical_devices("GPU")) <= 1:   # e.g. this CPU-only machine (tensorflow-cpu)
        assert distribution_strategy() is None
    assert "MirroredStrategy" not in capsys.readouterr().out

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


def test_spec_augment_masks_stripes_in_place():
    images = np.ones((3, 20, 40), np.float32)
    spec_augment(images, np.random.default_rng(0), masks=2)
    assert (images == 0).any() and (images == 1).mean() > 0.4


def test_onnx_exports_of_one_model_are_byte_identical(tmp_path):
    """tf2onnx numbers helper nodes in a run-dependent order; ser.io.write_onnx makes the file
    canonical, so a rerun leaves models/ (and `git status`, `dvc status`) unchanged."""
    import onnxruntime as ort

    from ser.io import write_onnx

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
