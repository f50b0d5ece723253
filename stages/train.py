"""Stage train: fit the fused 1D-CNN / 2D-CNN network, log curves with dvclive, save the model."""

from pathlib import Path

import numpy as np

from ser.bundle import make_bundle, save_bundle
from ser.config import load_params
from ser.dataset import load_split
from ser.errors import DataError, one_line_errors
from ser.evaluation import summary
from ser.io import write_json
from ser.model import build_model, model_inputs, set_determinism

FEATURES = Path("data/features")
MODELS = Path("models")


@one_line_errors
def main():
    params = load_params()
    cfg = params["train"]
    set_determinism(params["seed"])
    import keras
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    train, val = load_split(FEATURES, "train"), load_split(FEATURES, "val")
    if len(train["labels"]) == 0:
        raise DataError(f"{FEATURES}/train.npz: no training clips")
    classes = params["labels"]["classes"]
    model = build_model(train["features"].shape[1], train["spectrogram"].shape[1:], len(classes), cfg,
                        train["features"].mean(axis=0), train["features"].var(axis=0))
    has_val = len(val["labels"]) > 0
    callbacks = [DVCLiveCallback(live=Live("dvclive", save_dvc_exp=False, dvcyaml=None, report=None))]
    if cfg["patience"] and has_val:
        callbacks.insert(0, keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg["patience"],
                                                          restore_best_weights=True))
    history = model.fit(
        model_inputs(model, train), train["labels"],
        validation_data=(model_inputs(model, val), val["labels"]) if has_val else None,
        epochs=cfg["epochs"], batch_size=cfg["batch_size"], shuffle=True, callbacks=callbacks, verbose=2,
    )
    MODELS.mkdir(exist_ok=True)
    model.save(MODELS / "model.keras")
    model.save(MODELS / "model.h5")
    save_bundle(MODELS, make_bundle(params, train["features"].shape[1], train["spectrogram"].shape[1:]))

    losses = history.history.get("val_loss", history.history["loss"])
    result = {"epochs_run": len(history.history["loss"]), "best_epoch": int(np.argmin(losses)) + 1,
              "train_clips": int(len(train["labels"])), "val_clips": int(len(val["labels"]))}
    if has_val:
        predicted = model.predict(model_inputs(model, val), batch_size=256, verbose=0).argmax(axis=1)
        result["val"] = summary(val["labels"], predicted, len(classes))
    write_json("metrics/train.json", result)
    print(f"train: {result['epochs_run']} epochs, best {result['best_epoch']}"
          + (f", val UA {result['val']['ua']:.3f}" if has_val else ""))


if __name__ == "__main__":
    main()
