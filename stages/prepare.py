"""Stage prepare: decode, remove silences, balance emotions, assign cross-validation folds."""

from ser.audio.pack import save_pack
from ser.core.config import load_params
from ser.core.errors import DataError, one_line_errors
from ser.core.files import read_csv, write_csv, write_json
from ser.data.preparation import missing_classes, prepare_clips, truncated_count
from ser.data.splits import fold_summary


@one_line_errors
def main():
    params = load_params()
    manifest = read_csv("data/manifest/manifest.csv")
    table, clips, excluded = prepare_clips(manifest, params, spill_dir="data/prepared")
    # The exclusion report comes first, so it exists even when nothing is left to use.
    write_csv("metrics/excluded_prepare.csv", excluded)
    if table.empty:
        raise DataError(f"prepare: no usable clips left after decoding; {len(excluded)} excluded, reasons in "
                        "metrics/excluded_prepare.csv")
    missing = missing_classes(table, params["labels"]["classes"])
    if missing:
        raise DataError(f"params.yaml: labels.classes has {', '.join(map(repr, missing))} with no usable clip in the "
                        "data; remove it from labels.classes or map a corpus label onto it in labels.map")
    save_pack("data/prepared/audio.npz", clips)
    write_csv("data/prepared/clips.csv", table)
    folds = fold_summary(table)
    write_json("metrics/prepare.json", {
        "fold_mode": params["prepare"]["split"],
        "decoded": int(len(manifest) - len(excluded)),
        "excluded": int(len(excluded)),
        "excluded_reasons": {k: int(v) for k, v in excluded.reason.value_counts().items()},
        "truncated": truncated_count(excluded),
        "balanced_clips": int(len(table)),
        "speakers": int(table.speaker.nunique()),
        "hours": round(float(table.duration_s.astype(float).sum()) / 3600, 3),
        "folds": {name: {"clips": f["clips"], "speakers": len(f["speakers"])} for name, f in folds.items()},
    })
    print(f"prepare: {len(table)} clips, {table.speaker.nunique()} speakers in {len(folds)} folds ("
          + ", ".join(f"{f['clips']}/{len(f['speakers'])}" for f in folds.values())
          + f" clips/speakers); {len(excluded)} excluded, {truncated_count(excluded)} of them truncated files "
          "(metrics/excluded_prepare.csv)")


if __name__ == "__main__":
    main()
