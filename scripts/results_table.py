"""Print the README's results table (markdown) from the committed metrics files."""

import json
from pathlib import Path


def main():
    ev = json.loads(Path("metrics/evaluate.json").read_text())
    prep = json.loads(Path("metrics/prepare.json").read_text())
    train = json.loads(Path("metrics/train.json").read_text())
    test, protocol = ev["test"], ev["protocol"]
    split = f"{protocol['split']}-independent" if protocol["split"] == "speaker" else "random"
    print(f"Split: **test**, {split} ({prep['splits']['test']['speakers']} held-out speakers, "
          f"{test['clips']} clips); augmentation {'before' if protocol['augment_before_split'] else 'after'} "
          f"splitting, training split only; inputs = {protocol['inputs']}.\n")
    print("| scope | clips | UA | WA | macro-F1 |")
    print("|---|---:|---:|---:|---:|")
    print(f"| all test clips | {test['clips']} | {test['ua']:.3f} | {test['wa']:.3f} | {test['macro_f1']:.3f} |")
    for corpus, m in test["per_corpus"].items():
        print(f"| {corpus} | {m['clips']} | {m['ua']:.3f} | {m['wa']:.3f} | {m['macro_f1']:.3f} |")
    if "val" in train:
        v = train["val"]
        print(f"| *validation split* | {v['clips']} | {v['ua']:.3f} | {v['wa']:.3f} | {v['macro_f1']:.3f} |")
    print("\n| class | precision | recall | F1 | support |")
    print("|---|---:|---:|---:|---:|")
    for name, m in test["per_class"].items():
        print(f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")


if __name__ == "__main__":
    main()
