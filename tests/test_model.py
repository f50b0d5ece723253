import numpy as np
import pytest

from ser.model import build_model, model_inputs, set_determinism

N_FEATURES, SPEC = 20, (16, 24)


def data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    return {"features": rng.normal(labels[:, None], 1.0, (n, N_FEATURES)).astype(np.float32),
            "spectrogram": rng.random((n, *SPEC)).astype(np.float32), "labels": labels}


def cfg(inputs="both"):
    return {"inputs": inputs, "lr": 0.01, "filters": 4, "dense_units": 8, "dropout": 0.1}


@pytest.mark.parametrize("inputs, names", [("features", ["features"]), ("spectrogram", ["spectrogram"]),
                                           ("both", ["features", "spectrogram"])])
def test_input_modes(inputs, names):
    set_determinism(0)
    d = data()
    model = build_model(N_FEATURES, SPEC, 3, cfg(inputs), d["features"].mean(0), d["features"].var(0))
    assert sorted(model_inputs(model, d)) == names
    probs = model.predict(model_inputs(model, d), verbose=0)
    assert probs.shape == (32, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def fit_once(seed):
    set_determinism(seed)
    d = data()
    model = build_model(N_FEATURES, SPEC, 3, cfg(), d["features"].mean(0), d["features"].var(0))
    model.fit(model_inputs(model, d), d["labels"], epochs=2, batch_size=8, shuffle=True, verbose=0)
    return [w.copy() for w in model.get_weights()]


def test_training_is_deterministic():
    first, second = fit_once(5), fit_once(5)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not all(np.array_equal(a, b) for a, b in zip(first, fit_once(6)))


def test_saved_model_round_trip_with_safe_mode(tmp_path):
    import keras
    set_determinism(0)
    d = data()
    model = build_model(N_FEATURES, SPEC, 3, cfg(), d["features"].mean(0), d["features"].var(0))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True, compile=False)
    assert np.allclose(model.predict(model_inputs(model, d), verbose=0),
                       loaded.predict(model_inputs(loaded, d), verbose=0), atol=1e-6)
