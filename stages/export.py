"""Stage export: convert models/model.keras to models/model.onnx (runs without TensorFlow)."""

from pathlib import Path

import numpy as np

from ser.errors import DataError, one_line_errors
from ser.predict import load_keras_model

MODELS = Path("models")


@one_line_errors
def main():
    model, bundle = load_keras_model(MODELS)
    # Keras exports only models that have been called once; a zero batch is enough.
    dummy = {"features": np.zeros((1, bundle["n_features"]), np.float32),
             "spectrogram": np.zeros((1, *bundle["spectrogram_shape"]), np.float32)}
    model({t.name.split(":")[0]: dummy[t.name.split(":")[0]] for t in model.inputs})
    model.export(str(MODELS / "model.onnx"), format="onnx", verbose=False)

    import onnxruntime as ort

    session = ort.InferenceSession(str(MODELS / "model.onnx"), providers=["CPUExecutionProvider"])
    names = sorted(i.name for i in session.get_inputs())
    if names != sorted(t.name.split(":")[0] for t in model.inputs):
        raise DataError(f"models/model.onnx: unexpected inputs {names}")
    print(f"export: models/model.onnx ({(MODELS / 'model.onnx').stat().st_size / 1e6:.1f} MB), inputs {names}")


if __name__ == "__main__":
    main()
