"""The model runtime: a bundle's network as one callable, on ONNX Runtime (``model.onnx``) or
Keras (``model.keras``), opened only after its fingerprints and signature are checked against
the bundle. Either way a stale, edited or foreign model file is refused in one line."""

from pathlib import Path

import numpy as np

from ser.bundle.export import check_fingerprint, onnx_bundle_fingerprint, onnx_fingerprint
from ser.bundle.format import Bundle, load_bundle, weights_fingerprint
from ser.core.errors import DataError

BACKENDS = ("auto", "onnx", "keras")


def load_keras_model(model_dir: Path):
    """``(keras model, bundle)`` from ``model_dir``, loaded with Keras safe_mode on; refuses
    weights that are not the ones ``bundle.json`` was written for."""
    bundle = load_bundle(model_dir)
    path = Path(model_dir) / "model.keras"
    if not path.is_file():
        raise DataError(f"{path}: not found (train with `dvc repro` or fetch with `dvc pull`)")
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from ser.bundle.keras_file import keras_stamp

    # The bundle first, as the ONNX path does: an edited bundle with a recomputed bundle_sha256
    # keeps the weights' fingerprint, but not the stamp written into model.keras at training.
    check_fingerprint(keras_stamp(path), bundle, path, "bundle_sha256")
    try:
        model = keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # keras raises ValueError/OSError/zipfile errors for damaged files
        raise DataError(f"{path}: cannot load Keras model ({type(err).__name__})") from None
    check_fingerprint(weights_fingerprint(model.get_weights()), bundle, path)
    return model, bundle


def check_signature(inputs: dict, output_shape, bundle: Bundle, path: Path):
    """One-line refusal when a model's inputs (name -> shape without the batch axis) or its
    output do not match what the bundle says it takes and gives: a foreign model file."""
    def fits(shape, want):
        return len(shape) == len(want) and all(not isinstance(d, int) or d == w for d, w in zip(shape, want))

    wrong = sorted(set(inputs) ^ set(bundle.inputs))
    wrong += [name for name in bundle.inputs if name in inputs and not fits(list(inputs[name]), bundle.shapes[name])]
    if wrong or not fits(list(output_shape), [len(bundle.classes)]):
        raise DataError(f"{path}: its inputs or outputs are not the ones {Path(path).parent / 'bundle.json'} describes "
                        f"({', '.join(wrong) or 'classes'}); a foreign file: rebuild both with `dvc repro train`")


def choose_backend(model_dir: Path, bundle: Bundle, backend: str = "auto") -> str:
    """``onnx`` or ``keras``: ``auto`` takes ONNX when ``model.onnx`` is there (labelling never
    imports TensorFlow then). One line when the files the choice needs are missing."""
    onnx_path = model_dir / "model.onnx"
    if backend == "onnx" and not onnx_path.is_file():
        raise DataError(f"{onnx_path}: not found (rebuild it with `dvc repro train`)")
    if backend != "onnx" and not (model_dir / "model.keras").is_file() and not onnx_path.is_file():
        raise DataError(f"{model_dir / 'model.keras'}: not found (train with `dvc repro` or `dvc pull`)")
    return "onnx" if backend == "onnx" or (backend == "auto" and onnx_path.is_file()) else "keras"


class Runtime:
    """The network of ``bundle`` in ``model_dir`` on ``backend`` (``onnx`` or ``keras``):
    ``runtime(arrays)`` gives softmax outputs ``[n, classes]`` for stacked, normalized inputs."""

    def __init__(self, model_dir: Path, bundle: Bundle, backend: str):
        self.model_dir, self.bundle, self.backend = Path(model_dir), bundle, backend
        if backend == "onnx":
            from ser.core.onnx import open_session

            path = self.model_dir / "model.onnx"
            session = open_session(path, "ONNX model")
            check_fingerprint(onnx_fingerprint(session), bundle, path)
            check_fingerprint(onnx_bundle_fingerprint(session), bundle, path, "bundle_sha256")
            check_signature({i.name: i.shape[1:] for i in session.get_inputs()}, session.get_outputs()[0].shape[1:],
                            bundle, path)
            self.input_names = [i.name for i in session.get_inputs()]
            self._run = lambda feeds: session.run(None, feeds)[0]
        else:
            model, _ = load_keras_model(self.model_dir)
            check_signature({t.name.split(":")[0]: list(t.shape[1:]) for t in model.inputs},
                            list(model.outputs[0].shape[1:]), bundle, self.model_dir / "model.keras")
            self.input_names = [t.name.split(":")[0] for t in model.inputs]
            self._run = lambda feeds: model.predict(feeds, verbose=0)

    def __call__(self, arrays: dict, batch_size: int = 256) -> np.ndarray:
        n = len(next(iter(arrays.values())))
        try:
            out = [self._run({name: arrays[name][i:i + batch_size].astype(np.float32) for name in self.input_names})
                   for i in range(0, n, batch_size)]
        except Exception as err:  # a model that does not fit its bundle; ONNX Runtime and Keras raise their own types
            raise DataError(f"{self.model_dir}: the model does not accept the inputs its bundle.json describes "
                            f"({type(err).__name__}); rebuild it with `dvc repro train`") from None
        return np.concatenate(out) if out else np.zeros((0, len(self.bundle.classes)), np.float32)
