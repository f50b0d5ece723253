"""Stage train: the shipped model, trained on every speaker, exported to ONNX in the same step.

Export happens here, not in a separate stage, so models/model.keras, models/model.onnx and
models/bundle.json always come from one run and carry one weights fingerprint. The bundle takes
its calibration from the cv stage's out-of-fold predictions for whole speakers (metrics/cv.json)
and from the loco stage's unseen corpora for lone files and small references
(metrics/calibration.json).
Training curves and metrics are written to a temporary folder and moved into place at the end:
an interrupted run leaves the previous ones whole (dvc.yaml marks them persist).
"""

import json
import tempfile
from pathlib import Path

import numpy as np

from ser.bundle.export import save_trained_model
from ser.core.config import load_params
from ser.core.errors import DataError, one_line_errors
from ser.core.files import publish_tree, write_json
from ser.features.encoder import ENCODER_EXPORT, read_encoder_info
from ser.model.calibration import cv_calibration
from ser.model.training import run_split
from ser.model.training_data import load_training_data

MODELS = Path("models")
CALIBRATION = Path("metrics/calibration.json")


def shipped_calibration(params: dict, path: Path = CALIBRATION) -> dict:
    """The bundle's calibration: whole speakers from the cv stage (its temperature and
    ``calibration.uncertain_below``), lone files and references from the loco stage."""
    try:
        loco = json.loads(path.read_text())
        ways = {way: loco[way] for way in ("file", "reference")}
    except (FileNotFoundError, KeyError, TypeError, json.JSONDecodeError):
        raise DataError(f"{path}: no lone-file calibration in it (run `dvc repro loco` first)") from None
    group = {"temperature": cv_calibration()["group"]["temperature"],
             "uncertain_below": params["calibration"]["uncertain_below"]}
    return {"group_min_clips": params["calibration"]["group_min_clips"], "group": group, **ways}


@one_line_errors
def main():
    params = load_params()
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    calibration = shipped_calibration(params)
    data, table = load_training_data(params)
    every = np.arange(len(table))
    scratch = Path(tempfile.mkdtemp(prefix=".dvclive-", dir="."))
    live = Live(str(scratch), save_dvc_exp=False, dvcyaml=None, report=None)
    _, model, priors = run_split(data, table, every, every[:0], params, callbacks=[DVCLiveCallback(live=live)])
    shapes = {name: data[name].shape[1:] for name in params["train"]["inputs"]}
    info = read_encoder_info() if "encoder" in shapes else None
    fingerprint = save_trained_model(MODELS, model, params, shapes, priors, calibration, info, ENCODER_EXPORT)
    history = model.history.history
    publish_tree(scratch, Path("dvclive"), ["plots", "metrics.json"])
    write_json("metrics/train.json", {"epochs": len(history["loss"]), "train_clips": int(len(table)),
                                      "speakers": int(table.speaker.nunique()),
                                      "final_loss": float(history["loss"][-1]),
                                      "final_accuracy": float(history["accuracy"][-1])})
    print(f"train: {len(table)} clips of {table.speaker.nunique()} speakers, {len(history['loss'])} epochs, "
          f"final training accuracy {history['accuracy'][-1]:.3f}; models/model.keras + model.onnx, "
          f"weights {fingerprint[:12]}")


if __name__ == "__main__":
    main()
