"""Stage evaluate: score the trained model on the test split (metrics + confusion plots)."""

import json
from pathlib import Path

from ser.config import load_params
from ser.dataset import load_split
from ser.errors import DataError, one_line_errors
from ser.evaluation import confusion_table, report, summary
from ser.io import write_csv, write_json
from ser.plots import save_confusion_png
from ser.predict import load_keras_model

SPLIT = "test"


@one_line_errors
def main():
    params = load_params()
    model, bundle = load_keras_model(Path("models"))
    classes = bundle["classes"]
    data = load_split(Path("data/features"), SPLIT)
    if len(data["labels"]) == 0:
        raise DataError(f"data/features/{SPLIT}.npz: no clips to evaluate")
    from ser.model import model_inputs

    predicted = model.predict(model_inputs(model, data), batch_size=256, verbose=0).argmax(axis=1)
    table = data["table"]
    result = report(data["labels"], predicted, classes, groups=table.corpus.to_numpy())
    originals = (table.augmentation == "none").to_numpy()
    result["originals_only"] = summary(data["labels"][originals], predicted[originals], len(classes))
    protocol = {"split": params["prepare"]["split"], "augment_before_split": params["augment"]["before_split"],
                "inputs": bundle["train"]["inputs"]}
    if params["prepare"]["split"] == "corpus":
        protocol["test_corpora"] = params["prepare"]["test_corpora"]
    baseline = json.loads(Path("metrics/baseline.json").read_text())[SPLIT]
    result["margin_over_baseline"] = {k: result[k] - baseline[k] for k in ("ua", "wa", "macro_f1")}
    write_json("metrics/evaluate.json", {"protocol": protocol, SPLIT: result})
    write_csv("plots/confusion.csv", confusion_table(data["labels"], predicted, classes))
    save_confusion_png(Path("plots/confusion_test.png"), data["labels"], predicted, classes,
                       f"{SPLIT} split ({protocol['split']} split, inputs={protocol['inputs']})")
    print(f"evaluate: {SPLIT} ({protocol['split']} split): UA {result['ua']:.3f}  WA {result['wa']:.3f}  "
          f"macro-F1 {result['macro_f1']:.3f}  on {result['clips']} clips "
          f"(eGeMAPS+SVM baseline UA {baseline['ua']:.3f})")


if __name__ == "__main__":
    main()
