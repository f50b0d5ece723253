"""Stage embed: the pretrained encoder exported once, and every layer's mean and std over
frames for every original clip.

All layers are kept (7 layers x 2 x 512 floats a clip for Whisper base), so sweeping
``encoder.layers`` or ``encoder.pooling`` reruns cv, loco and train but never this stage: the
encoder pass is what costs. The export (``encoder.onnx``, every layer) is an output too: the
train stage ships that very file in the model bundle, so predict embeds a clip with the graph
that embedded the training clips. Copies made by ``augment`` share their original's embedding,
as they share its eGeMAPS functionals.
"""

import time

import numpy as np

from ser.audio.pack import Pack
from ser.core.config import load_params
from ser.core.errors import one_line_errors
from ser.core.files import read_csv, write_json, write_npz
from ser.features import encoder
from ser.features.embedding import EMBEDDINGS, ENCODER_EXPORT, ENCODER_INFO, embed_clips


@one_line_errors
def main():
    params = load_params()
    weights = encoder.load_weights(params["encoder"]["weights"])
    info = encoder.export_info(weights)
    table = read_csv("data/prepared/clips.csv")
    pack = Pack("data/prepared/audio.npz")
    encoder.export_encoder(weights, encoder.all_layers(weights.n_layers), ENCODER_EXPORT, info["fingerprint"])
    start = time.perf_counter()
    values = embed_clips([pack.pcm(i) for i in range(len(table))], info, ENCODER_EXPORT)
    seconds = time.perf_counter() - start
    write_npz(EMBEDDINGS, embeddings=values.astype(np.float32), source=table.source.to_numpy().astype(np.int64))
    write_json(ENCODER_INFO, info)
    print(f"embed: {len(table)} clips, {values.shape[1]} layers x {values.shape[2]} (mean | std) of the "
          f"{weights.source} encoder ({weights.sha256[:12]}), {len(table) / max(seconds, 1e-9):.1f} clips/s")


if __name__ == "__main__":
    main()
