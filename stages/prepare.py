"""Stage prepare: decode, remove silences, balance emotions, split into train/val/test."""

from ser.audio import save_pack
from ser.config import load_params
from ser.errors import one_line_errors
from ser.io import read_csv, write_csv, write_json
from ser.prepare import prepare
from ser.splits import split_summary


@one_line_errors
def main():
    params = load_params()
    manifest = read_csv("data/manifest/manifest.csv")
    table, clips, excluded = prepare(manifest, params)
    save_pack("data/prepared/audio.npz", clips)
    write_csv("data/prepared/clips.csv", table)
    write_csv("metrics/excluded_prepare.csv", excluded)
    summary = split_summary(table)
    write_json("metrics/prepare.json", {
        "split_mode": params["prepare"]["split"],
        "decoded": int(len(manifest) - len(excluded)),
        "excluded": int(len(excluded)),
        "excluded_reasons": {k: int(v) for k, v in excluded.reason.value_counts().items()},
        "balanced_clips": int(len(table)),
        "hours": round(float(table.duration_s.astype(float).sum()) / 3600, 3),
        "splits": summary,
    })
    print("prepare: " + ", ".join(f"{k} {summary[k]['clips']} clips / {summary[k]['speakers']} speakers"
                                  for k in ("train", "val", "test"))
          + (f", {summary['unused']} unused (a held-out corpus's speakers)" if summary["unused"] else "")
          + f"; {len(excluded)} excluded (metrics/excluded_prepare.csv)")


if __name__ == "__main__":
    main()
