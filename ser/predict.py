"""Loading a trained model bundle for evaluation and prediction."""

from pathlib import Path

from .bundle import load_bundle
from .errors import DataError


def load_keras_model(model_dir: Path):
    """``(keras model, bundle)`` from ``model_dir``, loaded with Keras safe_mode on."""
    bundle = load_bundle(model_dir)
    path = Path(model_dir) / "model.keras"
    if not path.is_file():
        raise DataError(f"{path}: not found (train with `dvc repro` or fetch with `dvc pull`)")
    import keras

    try:
        model = keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # keras raises ValueError/OSError/zipfile errors for damaged files
        raise DataError(f"{path}: cannot load Keras model ({type(err).__name__})") from None
    return model, bundle
