"""Stage encoder: the pretrained encoder (``encoder.weights``) exported once to ONNX, every layer.

Its own stage because the export (Keras, then tf2onnx) is the costliest step in memory, about
5.5 GB whatever the data (BENCHMARKS.md section 12): it runs when ``encoder.weights`` or this
code changes, never because the corpora grew. ``embed`` runs the export on every clip, and the
train stage ships this very file in the model bundle, so predict embeds a clip with the graph
that embedded the training clips. ``encoder.json`` (``ser.features.encoder.export_info``)
describes it: its mel bands, sizes and fingerprint.
"""

from ser.core.config import load_params
from ser.core.errors import one_line_errors
from ser.core.files import write_json
from ser.features import encoder


@one_line_errors
def main():
    params = load_params()
    weights = encoder.load_weights(params["encoder"]["weights"])
    info = encoder.export_info(weights)
    encoder.export_encoder(weights, encoder.all_layers(weights.n_layers), encoder.ENCODER_EXPORT,
                           info["fingerprint"])
    write_json(encoder.ENCODER_INFO, info)
    print(f"encoder: the {weights.source} encoder ({weights.sha256[:12]}) exported with all {weights.n_layers + 1} "
          f"layers to {encoder.ENCODER_EXPORT}")


if __name__ == "__main__":
    main()
