"""Stage augment: augmented copies of every clip (copies keep their original's fold)."""

from ser.audio.pack import Pack, save_pack
from ser.core.config import load_params
from ser.core.errors import one_line_errors
from ser.core.files import read_csv, write_csv, write_json
from ser.data.augment import augment


@one_line_errors
def main():
    params = load_params()
    frame = read_csv("data/prepared/clips.csv")
    pack = Pack("data/prepared/audio.npz")
    table, clips = augment(frame, [pack.pcm(i) for i in range(len(pack))], params)
    save_pack("data/augmented/audio.npz", clips)
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
