"""The Keras network: a 1D CNN over the feature vector, a 2D CNN over the log-mel image, an
MLP over eGeMAPS functionals and one over the pooled layers of a pretrained speech encoder
(``ser.features.encoder``), each optional (``train.inputs``), fused by an MLP head.

Inputs arrive already normalized (``ser.model.normalize``), so the saved model and its ONNX export
take normalized arrays and prediction applies the same normalization first.
TensorFlow is imported lazily so the data stages and ``--help`` stay fast.
"""

import os
import random

import numpy as np


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


def build_model(shapes: dict, n_classes: int, cfg: dict, steps_per_epoch: int = 1):
    """Build and compile the network for the inputs named in ``shapes`` (name -> shape).

    Pooling pads (``padding='same'``), so a feature vector of any length or an image one frame
    wide still builds. The learning rate follows a cosine decay to zero over ``cfg['epochs']``:
    no early stopping, so no data is held back from training to choose an epoch.
    """
    import keras
    from keras import layers

    if cfg.get("model", "network") == "linear":
        return _compiled(linear_model(shapes, n_classes, cfg), cfg, steps_per_epoch)
    filters, units, dropout = cfg["filters"], cfg["dense_units"], cfg["dropout"]
    inputs, branches = [], []
    if "features" in shapes:
        feat_in = keras.Input(tuple(shapes["features"]), name="features")
        x = layers.Reshape((shapes["features"][0], 1))(feat_in)
        for i in range(3):
            x = layers.Conv1D(filters * 2 ** i, 5, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
            x = layers.MaxPooling1D(2, padding="same")(x)
        # Flatten, not global pooling: a position in this vector *is* a feature's identity.
        x = layers.Flatten()(x)
        x = layers.Dropout(dropout)(x)
        branches.append(layers.Dense(units, activation="relu", name="features_embedding")(x))
        inputs.append(feat_in)
    if "spectrogram" in shapes:
        spec_in = keras.Input(tuple(shapes["spectrogram"]), name="spectrogram")
        x = layers.Reshape((*shapes["spectrogram"], 1))(spec_in)
        for i in range(3):
            x = layers.Conv2D(filters * 2 ** i, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
            x = layers.MaxPooling2D(2, padding="same")(x)
        # Average over time only: where energy sits in frequency carries emotion (pitch, formants).
        # (Pooling layer rather than a Lambda so the model loads with safe_mode on.)
        x = layers.AveragePooling2D(pool_size=(1, x.shape[2]), name="time_average")(x)
        x = layers.Flatten()(x)
        x = layers.Dropout(dropout)(x)
        branches.append(layers.Dense(units, activation="relu", name="spectrogram_embedding")(x))
        inputs.append(spec_in)
    if "egemaps" in shapes:
        ege_in = keras.Input(tuple(shapes["egemaps"]), name="egemaps")
        x = layers.Dropout(dropout / 2)(ege_in)
        branches.append(layers.Dense(units, activation="relu", name="egemaps_embedding")(x))
        inputs.append(ege_in)
    if "encoder" in shapes:
        enc_in = keras.Input(tuple(shapes["encoder"]), name="encoder")
        x = layers.Dropout(dropout / 2)(enc_in)
        branches.append(layers.Dense(units, activation="relu", name="encoder_embedding")(x))
        inputs.append(enc_in)
    x = branches[0] if len(branches) == 1 else layers.Concatenate(name="fusion")(branches)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(units, activation="relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="emotion")(x)
    return _compiled(keras.Model(inputs, outputs, name="ser_" + "_".join(shapes)), cfg, steps_per_epoch)


def linear_model(shapes: dict, n_classes: int, cfg: dict):
    """``train.model: linear``: multinomial logistic regression over every input, flattened and
    concatenated in the order of ``shapes``: the form the linear probe ships in
    (``ser.model.training.fit_linear`` sets its weights), saved and exported like the network."""
    import keras
    from keras import layers

    inputs = [keras.Input(tuple(shapes[name]), name=name) for name in shapes]
    flat = [layers.Flatten()(x) if len(x.shape) > 2 else x for x in inputs]
    x = flat[0] if len(flat) == 1 else layers.Concatenate(name="fusion")(flat)
    outputs = layers.Dense(n_classes, activation="softmax", name="emotion")(x)
    return keras.Model(inputs, outputs, name="ser_linear_" + "_".join(shapes))


def _compiled(model, cfg: dict, steps_per_epoch: int):
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(cfg["lr"], decay_steps=max(1, cfg["epochs"] * steps_per_epoch))
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def input_names(model) -> list[str]:
    """Names of the model's inputs, in order."""
    return [t.name.split(":")[0] for t in model.inputs]


def model_inputs(model, arrays: dict) -> dict:
    """The subset of ``arrays`` (name -> array) that ``model`` takes, by input name."""
    return {name: arrays[name] for name in input_names(model)}
