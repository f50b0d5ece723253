"""The per-file analysis behind every prediction: decode one file (whole, in a grid, or at its
pauses), check it for speech as recorded, clean it as training did and compute the model's raw
inputs, with only the settings a bundle's ``Analysis`` holds. No model, no normalization, no
other file: the same file always gives the same ``FileResult`` (``ser.app.predict`` then
normalizes and scores them). Errors become ``FileResult.error``: one bad file never stops a batch.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ser.app.rows import voiced_within
from ser.audio import cleaning, decode, headers, pack, speech
from ser.bundle.format import ENCODER_FILE, Analysis
from ser.core.errors import DataError
from ser.features import encoder
from ser.features.egemaps import functionals as egemaps
from ser.features.handcrafted import extract


def clean_as_trained(y: np.ndarray, settings: Analysis, name) -> np.ndarray:
    """The training pipeline's cleaning (``ser.audio.cleaning.clean``: silence removal, minimum length,
    level) with the bundle's settings."""
    try:
        c = settings.cleaning
        return cleaning.clean(y, c.sample_rate, c.silence_top_db, c.min_duration_s, c.loudness_dbfs, c.high_pass_hz)
    except DataError as err:
        raise DataError(f"{name}: {err}") from None


LONG_INPUT_S = 60.0   # a longer file without --segment is analysed on speech (one answer row), and
AUTO_SEGMENT_S = 30.0  # decoded this many seconds at a time: memory stays that of one piece


@dataclass
class FileResult:
    """Outcome for one input file: per-segment inputs (or an error) and later probabilities.

    Every segment has a span and its seconds of voiced speech; ``analysed`` indexes the
    segments with enough speech, whose rows ``inputs`` and ``probabilities`` hold. A file with
    none is ``no speech``: a result, not an error."""

    path: str
    error: str | None = None
    warning: str | None = None                     # e.g. a truncated file: labelled, but said
    auto_segmented: bool = False                   # long, segmented without being asked: one answer row
    segmentation: str | None = None                # None (one clip), "grid" or "speech"
    summary_source: "FileResult | None" = None     # for a grid: the same file on speech, its headline
    segments: list = field(default_factory=list)   # (start_s, end_s) of every segment
    speech_s: list = field(default_factory=list)   # voiced seconds per segment
    speech_spans: list = field(default_factory=list)  # (start_s, end_s) of voiced speech in the file
    analysed: list = field(default_factory=list)   # indices of segments with speech
    inputs: dict = field(default_factory=dict)     # input name -> [analysed segments, ...] raw arrays
    group: str = ""                                # clips normalized together (one speaker)
    normalization: str = ""                        # which statistics normalized the inputs
    voice_clips: int = 0                           # other clips of the voice behind those statistics
    probabilities: np.ndarray | None = None        # [analysed segments, classes], calibrated
    uncertain_below: float | None = None           # the threshold for how it was normalized

    @property
    def no_speech(self) -> bool:
        return self.error is None and not self.analysed


def bundle_encoder(model_dir: Path, settings: Analysis, banks: dict, threads: int = 0):
    """The bundle's exported encoder (``encoder.onnx``), opened once per process and checked
    against the bundle's encoder fingerprint."""
    entry = settings.encoder
    return encoder.runner(Path(model_dir) / ENCODER_FILE, banks, entry["max_frames"], entry["fingerprint"], threads)


def cleaned_clip(y: np.ndarray, settings: Analysis, name) -> np.ndarray | None:
    """The cleaned clip as training stored it, or None when it is silent or has too little
    sound to be a clip in training either."""
    try:
        # Training featurizes cleaned clips stored as 16-bit PCM: round-trip the same way,
        # so a clip gets the very features it would have had in training.
        return pack.to_float(pack.to_int16(clean_as_trained(y, settings, name)))
    except DataError:
        return None


def speech_spans(y: np.ndarray, settings: Analysis) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of the voiced speech in audio as decoded, before cleaning (Silero
    VAD at the bundle's threshold; ``speech.speech_probabilities``)."""
    sr = settings.sample_rate
    return speech.voiced_spans(speech.speech_probabilities(y, sr), settings.speech.threshold, len(y) / sr)


def featurize(clip: np.ndarray, settings: Analysis, banks: dict, run=None, smile=None) -> dict:
    """The model's raw inputs (name -> array) for one cleaned clip; ``run`` is the bundle's
    encoder when the model takes its embedding. ``smile``: the clip's eGeMAPS already started
    elsewhere (a future, ``start_egemaps``), waited for last instead of computed here."""
    sr, inputs, out = settings.sample_rate, settings.inputs, {}
    # Only what the model takes: the feature vector alone costs ~0.4 s of a cold start.
    if "features" in inputs or "spectrogram" in inputs:
        vector, image = extract(clip, sr, settings.featurize, banks)
        out.update({name: value for name, value in (("features", vector), ("spectrogram", image)) if name in inputs})
    if run is not None:
        entry = settings.encoder
        out["encoder"] = encoder.select(run.pooled(clip), entry["layers"], entry["pooling"])
    if "egemaps" in inputs:
        out["egemaps"] = smile.result() if smile is not None else egemaps(clip, sr, settings.egemaps_feature_set)
    return {name: out[name] for name in inputs}


def start_egemaps(clip: np.ndarray, settings: Analysis, pool):
    """The clip's eGeMAPS started on ``pool`` (a future), or None when the model does not take
    it. openSMILE's C library releases the GIL: it runs beside the speech check and the
    encoder (ONNX Runtime releases it too), the slowest step of a clip on a core of its own."""
    if "egemaps" not in settings.inputs:
        return None
    return pool.submit(egemaps, clip, settings.sample_rate, settings.egemaps_feature_set)


SPEECH = "speech"      # segment_s (--segment speech): the segments are the voiced stretches
SPEECH_JOIN_S = 0.5    # a pause shorter than this joins two voiced stretches into one segment
SPEECH_PAD_S = 0.2     # sound kept around a stretch (never past the middle of a pause)
SPEECH_MAX_S = 8.0     # a longer stretch is cut into equal parts no longer than this


def speech_segments(spans, duration_s: float, join_s: float = SPEECH_JOIN_S, pad_s: float = SPEECH_PAD_S,
                    max_s: float = SPEECH_MAX_S) -> list[tuple[float, float]]:
    """Segments of a recording from its voiced ``spans`` (``(start_s, end_s)``, in order):
    stretches with pauses shorter than ``join_s`` between them become one, each is padded by
    ``pad_s`` (up to the middle of the pause beside it, within ``[0, duration_s]``), and one
    longer than ``max_s`` is cut into equal parts. A phrase is not cut in half by a grid, and
    silence between phrases is no segment."""
    joined = []
    for a, b in spans:
        if joined and a - joined[-1][1] < join_s:
            joined[-1][1] = max(joined[-1][1], b)
        else:
            joined.append([a, b])
    out = []
    for i, (a, b) in enumerate(joined):
        low = (joined[i - 1][1] + a) / 2 if i else 0.0
        high = (b + joined[i + 1][0]) / 2 if i + 1 < len(joined) else duration_s
        a, b = max(low, a - pad_s), min(high, b + pad_s)
        parts = max(1, int(np.ceil((b - a) / max_s - 1e-9)))
        out += [(a + (b - a) * k / parts, a + (b - a) * (k + 1) / parts) for k in range(parts)]
    return out


def analyse_file(path: str, settings: Analysis, banks: dict, segment_s: float | str | None = None, model_dir=None,
                 threads: int = 0, pool=None, segment_over: float | None = None) -> FileResult:
    """Decode, clean, check for speech and featurize one file with the bundle's settings and
    filterbanks (and its encoder, from ``model_dir``); errors become ``FileResult.error`` so
    one bad file never stops a batch.

    ``segment_s``: None, the whole file as one clip; a number, consecutive segments of that
    many seconds (a fixed grid); ``SPEECH``, the voiced stretches (``speech_segments``). A file
    longer than ``LONG_INPUT_S`` without ``segment_s`` is analysed on speech too, and answered
    in one row (``auto_segmented``); with ``segment_over``, a file no longer than that is
    analysed whole all the same (each file's segmentation its own). The file is decoded ``AUTO_SEGMENT_S`` at a time when long,
    so memory does not grow with its length. With ``pool`` (a one-thread executor) each clip's
    eGeMAPS runs there, beside its speech check and encoder: the same values."""
    result = FileResult(path)
    try:
        sr = settings.sample_rate
        inputs = settings.inputs
        result.warning = headers.header_mismatch(path)
        seconds = decode.duration(path)
        long = (seconds or 0.0) > LONG_INPUT_S
        if segment_s and segment_over is not None and seconds is not None and seconds <= segment_over:
            segment_s = None
        if not segment_s and long:
            segment_s, result.auto_segmented = SPEECH, True
        on_speech = segment_s == SPEECH
        result.segmentation = SPEECH if on_speech else "grid" if segment_s else None
        per_input = {name: [] for name in inputs}
        run = bundle_encoder(model_dir, settings, banks, threads) if "encoder" in inputs else None

        def analyse(start_s: float, y: np.ndarray, spans) -> None:
            """One segment: ``y`` from ``start_s``, with the voiced ``spans`` the detector found in it."""
            result.segments.append((round(start_s, 3), round(start_s + len(y) / sr, 3)))
            clip = cleaned_clip(y, settings, path)
            # With a pool, eGeMAPS starts beside the speech check and the encoder: the same values, sooner.
            smile = start_egemaps(clip, settings, pool) if clip is not None and pool is not None else None
            voiced = sum(b - a for a, b in spans) if clip is not None else 0.0
            features = None
            if clip is not None and voiced >= settings.speech.min_speech_s:
                features = featurize(clip, settings, banks, run, smile)
            elif smile is not None and not smile.cancel():
                # Already running: wait, so that one openSMILE runs at a time (whether its
                # instances may run side by side is not documented); its values are dropped.
                smile.exception()
            result.speech_s.append(round(voiced, 2))
            if features is None:
                return
            result.analysed.append(len(result.segments) - 1)
            for name, value in features.items():
                per_input[name].append(value)

        decode_s = (AUTO_SEGMENT_S if long else None) if on_speech else segment_s
        for start, y in decode.segments(path, sr, decode_s):
            offset = start / sr
            # The speech check reads the audio as recorded: the cleaned clip lacks the pauses around
            # words that the detector needs (real speech came out as 0 s there).
            spans = speech_spans(y, settings)
            result.speech_spans += [(round(offset + a, 3), round(offset + b, 3)) for a, b in spans]
            if not on_speech:
                analyse(offset, y, spans)
                continue
            for a, b in speech_segments(spans, len(y) / sr):
                first, last = int(round(a * sr)), int(round(b * sr))
                analyse(offset + first / sr, y[first:last], voiced_within(spans, (a, b)))
        if result.analysed:
            result.inputs = {name: np.stack(values) for name, values in per_input.items()}
    except DataError as err:
        result.error = str(err)
    except MemoryError:
        result.error = f"{path}: too large to decode in memory"
    return result
