"""Stage egemaps: openSMILE functionals of every original clip (baseline and eGeMAPS branch)."""

from functools import partial

import numpy as np

from ser.audio import pack as audio_pack
from ser.audio.pack import Pack
from ser.core.config import load_params
from ser.core.errors import DataError, one_line_errors
from ser.core.files import read_csv, write_npz
from ser.core.parallel import pmap
from ser.features.egemaps import functionals


def _functionals(pcm, sample_rate, feature_set):
    return functionals(audio_pack.to_float(pcm), sample_rate, feature_set)


@one_line_errors
def main():
    params = load_params()
    feature_set, sample_rate = params["baseline"]["feature_set"], params["audio"]["sample_rate"]
    # The originals (prepare's output), not the augmented set: openSMILE costs ~60 ms a clip, so
    # copies reuse their original's functionals, and changing augment.* does not rerun this stage.
    table = read_csv("data/prepared/clips.csv")
    pack = Pack("data/prepared/audio.npz")
    work = partial(_functionals, sample_rate=sample_rate, feature_set=feature_set)
    if len(pack) != len(table):
        raise DataError("data/prepared: audio.npz and clips.csv disagree; rerun `dvc repro prepare`")
    values = np.stack(pmap(work, pack.pcms(), desc="egemaps", chunksize=8, total=len(table)))   # 88 floats a clip
    write_npz("data/egemaps/egemaps.npz", functionals=values.astype(np.float32),
              source=table.source.to_numpy().astype(np.int64))
    print(f"egemaps: {len(table)} clips, {values.shape[1]} {feature_set} functionals")


if __name__ == "__main__":
    main()
