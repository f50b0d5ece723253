"""Stage augment: augmented copies of every clip (copies keep their original's fold); the clip table
lists the originals (in data/prepared) and then the copies (data/augmented/copies.npz)."""

from ser.audio.pack import Pack, save_pack
from ser.core.config import load_params
from ser.core.errors import DataError, one_line_errors
from ser.core.files import read_csv, write_csv, write_json
from ser.data.augment import augment


@one_line_errors
def main():
    params = load_params()
    frame = read_csv("data/prepared/clips.csv")
    pack = Pack("data/prepared/audio.npz")
    if len(pack) != len(frame):
        raise DataError("data/prepared: audio.npz and clips.csv disagree; rerun `dvc repro prepare`")
    # Only the copies are written: the originals stay in data/prepared, read from there by
    # featurize, so the audio is never stored twice.
    table, copies = augment(frame, pack.stored, params, spill_dir="data/augmented")
    save_pack("data/augmented/copies.npz", copies)
    write_csv("data/augmented/clips.csv", table)
    write_json("metrics/augment.json", {
        "before_split": params["augment"]["before_split"],
        "methods": params["augment"]["methods"],
        "clips": int(len(table)),
        "per_augmentation": {k: int(v) for k, v in table.augmentation.value_counts().sort_index().items()},
    })
    print(f"augment: {len(table) - len(frame)} copies added, {len(table)} clips")


if __name__ == "__main__":
    main()
