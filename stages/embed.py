"""Stage embed: every layer's mean and std over frames for every original clip, from the
encoder the ``encoder`` stage exported (``data/encoder``).

All layers are kept (7 layers x 2 x 512 floats a clip for Whisper base), so sweeping
``encoder.layers`` or ``encoder.pooling`` reruns cv, loco and train but never this stage: the
encoder pass is what costs. Copies made by ``augment`` share their original's embedding, as
they share its eGeMAPS functionals.
"""

import contextlib
import time

from ser.audio.pack import Pack
from ser.core.config import load_params
from ser.core.errors import DataError, one_line_errors
from ser.core.files import read_csv
from ser.features.embedding import EMBEDDINGS, embed_iter, save_embeddings
from ser.features.encoder import ENCODER_EXPORT, read_encoder_info


@one_line_errors
def main():
    load_params()   # validated, as in every stage, though this one reads none
    info = read_encoder_info()
    table = read_csv("data/prepared/clips.csv")
    pack = Pack("data/prepared/audio.npz")
    if len(pack) != len(table):
        raise DataError("data/prepared: audio.npz and clips.csv disagree; rerun `dvc repro prepare`")
    start = time.perf_counter()
    with contextlib.closing(embed_iter(pack.pcms(), info, ENCODER_EXPORT, total=len(table))) as embedded:
        save_embeddings(EMBEDDINGS, embedded, info, table.source.to_numpy())
    seconds = time.perf_counter() - start
    print(f"embed: {len(table)} clips, {info['n_layers'] + 1} layers x {2 * info['d_model']} (mean | std) of the "
          f"{info['weights']} encoder ({info['model_sha256'][:12]}), {len(table) / max(seconds, 1e-9):.1f} clips/s")


if __name__ == "__main__":
    main()
