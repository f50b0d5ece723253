"""The Keras network: 1D CNN over the feature vector, 2D CNN over the spectrogram, MLP fusion.

TensorFlow is imported lazily so the data stages and ``--help`` stay fast.
"""

import os
import random

import numpy as np

INPUT_NAMES = {"features": ["features"], "spectrogram": ["spectrogram"], "both": ["features", "spectrogram"]}


def set_determinism(seed: int):
    """Seed Python, NumPy and TensorFlow and make TF ops deterministic; return the tf module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["PYTHONHASHSEED"] = str(seed)
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    return tf


def build_model(n_features: int, spec_shape: tuple, n_classes: int, cfg: dict,
                feature_mean: np.ndarray, feature_var: np.ndarray):
    """Build and compile the network for ``cfg['inputs']`` in {features, spectrogram, both}.

    Feature standardisation is a layer (statistics from the training split), so a saved model
    takes raw feature vectors and prediction needs no separate scaler.
    """
    import keras
    from keras import layers

    filters, units, dropout = cfg["filters"], cfg["dense_units"], cfg["dropout"]
    inputs, branches = [], []
    if cfg["inputs"] in ("features", "both"):
        feat_in = keras.Input((n_features,), name="features")
        std = np.sqrt(np.maximum(np.asarray(feature_var, np.float64), 1e-8))
        # Standardise with constants (a Rescaling layer): unlike Normalization's variables they
        # survive ONNX export as initialisers instead of becoming extra graph inputs.
        x = layers.Rescaling(scale=(1.0 / std).astype(np.float32).tolist(),
                             offset=(-np.asarray(feature_mean) / std).astype(np.float32).tolist(),
                             name="standardize")(feat_in)
        x = layers.Reshape((n_features, 1))(x)
        for i in range(3):
            x = layers.Conv1D(filters * 2 ** i, 5, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
            x = layers.MaxPooling1D(2)(x)
        # Flatten, not global pooling: a position in this vector *is* a feature's identity.
        x = layers.Flatten()(x)
        x = layers.Dropout(dropout)(x)
        branches.append(layers.Dense(units, activation="relu", name="features_embedding")(x))
        inputs.append(feat_in)
    if cfg["inputs"] in ("spectrogram", "both"):
        spec_in = keras.Input(spec_shape, name="spectrogram")
        x = layers.Reshape((*spec_shape, 1))(spec_in)
        for i in range(3):
            x = layers.Conv2D(filters * 2 ** i, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
            x = layers.MaxPooling2D(2)(x)
        # Average over time only: where energy sits in frequency carries emotion (pitch, formants).
        # (Pooling layer rather than a Lambda so the model loads with safe_mode on.)
        x = layers.AveragePooling2D(pool_size=(1, x.shape[2]), name="time_average")(x)
        x = layers.Flatten()(x)
        x = layers.Dropout(dropout)(x)
        branches.append(layers.Dense(units, activation="relu", name="spectrogram_embedding")(x))
        inputs.append(spec_in)
    x = branches[0] if len(branches) == 1 else layers.Concatenate(name="fusion")(branches)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(units, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="emotion")(x)
    model = keras.Model(inputs, outputs, name=f"ser_{cfg['inputs']}")
    model.compile(optimizer=keras.optimizers.Adam(cfg["lr"]), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def model_inputs(model, arrays: dict) -> dict:
    """The subset of ``{'features': ..., 'spectrogram': ...}`` that ``model`` takes, by input name."""
    return {t.name.split(":")[0]: arrays[t.name.split(":")[0]] for t in model.inputs}
