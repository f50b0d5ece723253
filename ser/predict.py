"""Prediction with a trained model bundle: the same cleaning and feature code as training.

A bundle is a folder (``models/``) with ``bundle.json``, ``model.keras`` and ``model.onnx``,
all written by the train stage and stamped with one weights fingerprint. ``Predictor`` uses
the ONNX model through ONNX Runtime when it is there, so labelling files never has to import
TensorFlow. Inputs are normalised by speaker group (``ser.normalize``) exactly as in training.
Features come from the bundle's filterbanks (``ser.bundle.load_filterbanks``), openSMILE's
C library and the bundle's exported encoder (``encoder.onnx``, ONNX Runtime), so labelling a
file imports neither librosa, scipy.signal, scikit-learn, pandas nor TensorFlow.
"""

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from . import audio, encoder, speech
from .baseline import functionals as egemaps
from .baseline import prepare as prepare_egemaps
from .bundle import ENCODER_FILE, load_bundle, load_filterbanks
from .calibration import apply_way, way_for
from .errors import DataError
from .features import extract
from .rows import voiced_within


def load_keras_model(model_dir: Path):
    """``(keras model, bundle)`` from ``model_dir``, loaded with Keras safe_mode on; refuses
    weights that are not the ones ``bundle.json`` was written for."""
    bundle = load_bundle(model_dir)
    path = Path(model_dir) / "model.keras"
    if not path.is_file():
        raise DataError(f"{path}: not found (train with `dvc repro` or fetch with `dvc pull`)")
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from .bundle import weights_fingerprint
    from .export import check_fingerprint
    from .io import keras_stamp

    # The bundle first, as the ONNX path does: an edited bundle with a recomputed bundle_sha256
    # keeps the weights' fingerprint, but not the stamp written into model.keras at training.
    check_fingerprint(keras_stamp(path), bundle, path, "bundle_sha256")

    try:
        model = keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # keras raises ValueError/OSError/zipfile errors for damaged files
        raise DataError(f"{path}: cannot load Keras model ({type(err).__name__})") from None
    check_fingerprint(weights_fingerprint(model.get_weights()), bundle, path)
    return model, bundle


def clean(y: np.ndarray, bundle: dict, name) -> np.ndarray:
    """The training pipeline's cleaning (``ser.audio.clean``: silence removal, minimum length,
    level) with the bundle's settings."""
    try:
        return audio.clean(y, bundle["sample_rate"], bundle["silence_top_db"], bundle["min_duration_s"],
                           bundle["loudness_dbfs"], bundle["high_pass_hz"])
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
    group: str = ""                                # clips normalised together (one speaker)
    normalization: str = ""                        # which statistics normalised the inputs
    voice_clips: int = 0                           # other clips of the voice behind those statistics
    probabilities: np.ndarray | None = None        # [analysed segments, classes], calibrated
    uncertain_below: float | None = None           # the threshold for how it was normalised

    @property
    def no_speech(self) -> bool:
        return self.error is None and not self.analysed


def bundle_encoder(model_dir: Path, bundle: dict, banks: dict, threads: int = 0):
    """The bundle's exported encoder (``encoder.onnx``), opened once per process and checked
    against the bundle's encoder fingerprint."""
    entry = bundle["encoder"]
    return encoder.runner(Path(model_dir) / ENCODER_FILE, banks, entry["max_frames"], entry["fingerprint"], threads)


def cleaned_clip(y: np.ndarray, bundle: dict, name) -> np.ndarray | None:
    """The cleaned clip as training stored it, or None when it is silent or has too little
    sound to be a clip in training either."""
    try:
        # Training featurises cleaned clips stored as 16-bit PCM: round-trip the same way,
        # so a clip gets the very features it would have had in training.
        return audio.to_float(audio.to_int16(clean(y, bundle, name)))
    except DataError:
        return None


def voiced_spans(y: np.ndarray, bundle: dict) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of the voiced speech in audio as decoded, before cleaning (Silero
    VAD at the bundle's threshold; ``speech.speech_probabilities``)."""
    sr = bundle["sample_rate"]
    return speech.voiced_spans(speech.speech_probabilities(y, sr), bundle["speech"]["threshold"], len(y) / sr)


def featurise(clip: np.ndarray, bundle: dict, banks: dict, run=None, smile=None) -> dict:
    """The model's raw inputs (name -> array) for one cleaned clip; ``run`` is the bundle's
    encoder when the model takes its embedding. ``smile``: the clip's eGeMAPS already started
    elsewhere (a future, ``start_egemaps``), waited for last instead of computed here."""
    sr, inputs, out = bundle["sample_rate"], bundle["inputs"], {}
    # Only what the model takes: the feature vector alone costs ~0.4 s of a cold start.
    if "features" in inputs or "spectrogram" in inputs:
        vector, image = extract(clip, sr, bundle["featurize"], banks)
        out.update({name: value for name, value in (("features", vector), ("spectrogram", image)) if name in inputs})
    if run is not None:
        entry = bundle["encoder"]
        out["encoder"] = encoder.select(run.pooled(clip), entry["layers"], entry["pooling"])
    if "egemaps" in inputs:
        out["egemaps"] = smile.result() if smile is not None else egemaps(clip, sr, bundle["egemaps_feature_set"])
    return {name: out[name] for name in inputs}


def start_egemaps(clip: np.ndarray, bundle: dict, pool):
    """The clip's eGeMAPS started on ``pool`` (a future), or None when the model does not take
    it. openSMILE's C library releases the GIL: it runs beside the speech check and the
    encoder (ONNX Runtime releases it too), the slowest step of a clip on a core of its own."""
    if "egemaps" not in bundle["inputs"]:
        return None
    return pool.submit(egemaps, clip, bundle["sample_rate"], bundle["egemaps_feature_set"])


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


def analyse_file(path: str, bundle: dict, banks: dict, segment_s: float | str | None = None, model_dir=None,
                 threads: int = 0, pool=None, segment_over: float | None = None) -> FileResult:
    """Decode, clean, check for speech and featurise one file with the bundle's settings and
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
        sr = bundle["sample_rate"]
        inputs = bundle["inputs"]
        result.warning = audio.header_mismatch(path)
        seconds = audio.duration(path)
        long = (seconds or 0.0) > LONG_INPUT_S
        if segment_s and segment_over is not None and seconds is not None and seconds <= segment_over:
            segment_s = None
        if not segment_s and long:
            segment_s, result.auto_segmented = SPEECH, True
        on_speech = segment_s == SPEECH
        result.segmentation = SPEECH if on_speech else "grid" if segment_s else None
        per_input = {name: [] for name in inputs}
        run = bundle_encoder(model_dir, bundle, banks, threads) if "encoder" in inputs else None

        def analyse(start_s: float, y: np.ndarray, spans) -> None:
            """One segment: ``y`` from ``start_s``, with the voiced ``spans`` the detector found in it."""
            result.segments.append((round(start_s, 3), round(start_s + len(y) / sr, 3)))
            clip = cleaned_clip(y, bundle, path)
            # With a pool, eGeMAPS starts beside the speech check and the encoder: the same values, sooner.
            smile = start_egemaps(clip, bundle, pool) if clip is not None and pool is not None else None
            voiced = sum(b - a for a, b in spans) if clip is not None else 0.0
            features = None
            if clip is not None and voiced >= bundle["speech"]["min_speech_s"]:
                features = featurise(clip, bundle, banks, run, smile)
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
        for start, y in audio.segments(path, sr, decode_s):
            offset = start / sr
            # The speech check reads the audio as recorded: the cleaned clip lacks the pauses around
            # words that the detector needs (real speech came out as 0 s there).
            spans = voiced_spans(y, bundle)
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


def emotion_names(bundle: dict) -> set:
    """Lower-case names that mark a folder as an emotion, not a speaker: the bundle's classes
    and every corpus label of its ``label_map``."""
    return {name.lower() for name in [*bundle["classes"], *bundle["label_map"]]}


def group_key(path: str, grouping: str, emotions=frozenset()) -> str:
    """Which clips are one speaker: ``file`` (a file and its segments), ``folder`` (every file
    in a folder) or ``all`` (every input). A folder named after an emotion (any case; e.g.
    ``angry/``) is never a group: standardising it would remove the very emotion to be
    recognised, so its files join the nearest folder above it that is not an emotion."""
    if grouping == "file":
        return str(path)
    if grouping == "folder":
        folder = Path(path).parent
        while folder.name.lower() in emotions and folder != folder.parent:
            folder = folder.parent
        return str(folder)
    return "all inputs"


def emotion_folders(paths, emotions) -> list[str]:
    """The folders among ``paths``' parents that ``group_key`` passes over (emotion names)."""
    return sorted({str(Path(p).parent) for p in paths if Path(p).parent.name.lower() in emotions})


@dataclass
class Reference:
    """Clips of the voice to be labelled, given only to normalise it (``predict --reference``):
    their raw model inputs stacked over every clip (each analysed segment of each file)."""

    files: list
    inputs: dict          # input name -> [clips, ...] raw arrays
    clips: int
    speech_s: float

    @classmethod
    def from_results(cls, results) -> "Reference":
        """The reference made of analysed files (``analyse_file``), each with speech."""
        names = list(results[0].inputs)
        return cls(files=[r.path for r in results],
                   inputs={n: np.concatenate([r.inputs[n] for r in results]) for n in names},
                   clips=sum(len(r.analysed) for r in results),
                   speech_s=float(sum(sum(r.speech_s[i] for i in r.analysed) for r in results)))

    def describe(self, weight: float) -> str:
        return (f"reference: {self.clips} clip{'s' if self.clips != 1 else ''}, {self.speech_s:.1f} s of speech, "
                f"{weight:.0%} own statistics")


def check_reference_result(result: FileResult, name=None) -> None:
    """One line for a reference file that cannot serve: it failed, or has no speech."""
    name = name or result.path
    if result.error:
        raise DataError(f"--reference {result.error}" if result.error.startswith(str(name))
                        else f"--reference {name}: {result.error}")
    if result.no_speech:
        raise DataError(f"--reference {name}: no speech in it ({sum(result.speech_s):.2f} s voiced): a reference "
                        "must be the voice speaking")


def normalise_results(results, bundle: dict, groups, reference: Reference | None = None) -> None:
    """Normalise every analysed result's inputs in place, group by group, as in training.

    ``groups`` gives one key per result; all analysed segments of the results sharing a key
    form one group of clips (one speaker) under speaker or corpus normalisation. With a
    ``reference``, every result is normalised with the reference's statistics alone (shrunk
    as a group of its size): the targets do not join them, so a clip's answer never depends
    on which other clips were labelled with it.
    """
    from . import normalize

    norm = bundle["normalize"]
    good = [(r, g) for r, g in zip(results, groups) if r.error is None and r.analysed]
    if not good:
        return
    if reference is not None and norm["mode"] in ("speaker", "corpus"):
        for name in bundle["inputs"]:
            mean, var, _, weight = normalize.reference_statistics(reference.inputs[name], norm["priors"][name],
                                                                  norm["prior_clips"], norm["var_prior_clips"])
            for r, _ in good:
                r.inputs[name] = normalize.standardise(r.inputs[name], mean, var)
        for r, _ in good:
            r.group, r.voice_clips, r.normalization = "reference", reference.clips, reference.describe(weight)
        return
    keys = np.concatenate([[g] * len(r.analysed) for r, g in good])
    for name in bundle["inputs"]:
        stacked = np.concatenate([r.inputs[name] for r, _ in good])
        normalised, used = normalize.normalise(stacked, keys, norm["mode"], norm["priors"][name], norm["prior_clips"],
                                               norm["var_prior_clips"], norm["lone_file"])
        offset = 0
        for r, g in good:
            r.inputs[name] = normalised[offset:offset + len(r.analysed)]
            offset += len(r.analysed)
    for r, g in good:
        r.group = g
        r.normalization = normalize.describe(norm["mode"], {g: used[g]} if g in used else used)
        if reference is not None:
            r.normalization += "; the reference is not used: this model is not normalised by speaker"
        # The clip's voice as far as the statistics know it: the other clips of its group.
        r.voice_clips = used[g][0] - 1 if g in used else 0


def calibration_for(bundle: dict, voice_clips: int) -> dict:
    """``{"temperature", "uncertain_below"[, "class_prior"]}`` matching how a clip was normalised: with
    ``voice_clips`` other clips of its voice (``ser.calibration.way_for``): none (a lone
    file), a few (a reference, a small folder) or a whole speaker. Under global or utterance
    normalisation a clip's group does not matter: the whole-speaker one."""
    cal = bundle["calibration"]
    if bundle["normalize"]["mode"] in ("global", "utterance"):
        return cal["group"]
    return cal[way_for(voice_clips, cal["group_min_clips"])]


# The encoder's ONNX Runtime threads. One: beside it, the clip's eGeMAPS takes the other core
# (in-process) or every core runs a worker process of its own (batches); a second thread gained
# 4 ms of 44 on a 3-s clip alone and lost more to the contention (BENCHMARKS.md section 7).
ENCODER_THREADS = 1


class Predictor:
    """Class probabilities from a model bundle, via ONNX Runtime if exported, else Keras."""

    def __init__(self, model_dir="models", backend: str = "auto"):
        self.model_dir = Path(model_dir)
        self.bundle = load_bundle(self.model_dir)
        self.filterbanks = load_filterbanks(self.model_dir, self.bundle)
        self.classes = self.bundle["classes"]
        onnx_path = self.model_dir / "model.onnx"
        if backend == "onnx" and not onnx_path.is_file():
            raise DataError(f"{onnx_path}: not found (rebuild it with `dvc repro train`)")
        if backend != "onnx" and not (self.model_dir / "model.keras").is_file() and not onnx_path.is_file():
            raise DataError(f"{self.model_dir / 'model.keras'}: not found (train with `dvc repro` or `dvc pull`)")
        if "encoder" in self.bundle["inputs"] and not (self.model_dir / ENCODER_FILE).is_file():
            raise DataError(f"{self.model_dir / ENCODER_FILE}: not found (rebuild it with `dvc repro train`)")
        self.backend = "onnx" if backend == "onnx" or (backend == "auto" and onnx_path.is_file()) else "keras"
        self._runner = None  # loaded on first use: after feature workers have forked, never before
        self._overlap = None

    def _load(self):
        if self.backend == "onnx":
            import onnxruntime as ort

            from .export import check_fingerprint, onnx_bundle_fingerprint, onnx_fingerprint

            onnx_path = self.model_dir / "model.onnx"
            options = ort.SessionOptions()
            options.log_severity_level = 3
            try:
                session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
            except Exception as err:  # onnxruntime raises its own exception types for bad files
                raise DataError(f"{onnx_path}: cannot load ONNX model ({type(err).__name__})") from None
            check_fingerprint(onnx_fingerprint(session), self.bundle, onnx_path)
            check_fingerprint(onnx_bundle_fingerprint(session), self.bundle, onnx_path, "bundle_sha256")
            check_signature({i.name: i.shape[1:] for i in session.get_inputs()}, session.get_outputs()[0].shape[1:],
                            self.bundle, onnx_path)
            self.input_names = [i.name for i in session.get_inputs()]
            return lambda feeds: session.run(None, feeds)[0]
        # openSMILE's library aborts when it is first loaded in a process that has built a Keras
        # model (serve --backend keras crashed warming up): load it first.
        self.prepare()
        model, _ = load_keras_model(self.model_dir)
        check_signature({t.name.split(":")[0]: list(t.shape[1:]) for t in model.inputs}, list(model.outputs[0].shape[1:]),
                        self.bundle, self.model_dir / "model.keras")
        self.input_names = [t.name.split(":")[0] for t in model.inputs]
        return lambda feeds: model.predict(feeds, verbose=0)

    def check(self):
        """Load the model now (and verify its fingerprint) rather than at the first batch."""
        if self._runner is None:
            self._runner = self._load()

    def overlap(self):
        """A one-thread executor for the part of a clip's featurisation that runs beside the
        rest (``featurise``); made on first use, never before worker processes fork."""
        if self._overlap is None:
            from concurrent.futures import ThreadPoolExecutor

            self._overlap = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ser-featurise")
        return self._overlap

    def warm_up(self):
        """Load everything a prediction uses (the model, the encoder, the speech detector,
        openSMILE's library) and run each once on a second of noise, so that a long-running
        caller (``serve``) answers its first request as fast as the next ones."""
        self.check()
        sr = self.bundle["sample_rate"]
        noise = (0.05 * np.random.default_rng(0).standard_normal(sr)).astype(np.float32)
        speech.speech_seconds(noise, sr, self.bundle["speech"]["threshold"])
        run = None
        if "encoder" in self.bundle["inputs"]:
            run = bundle_encoder(self.model_dir, self.bundle, self.filterbanks, ENCODER_THREADS)
        smile = start_egemaps(noise, self.bundle, self.overlap())
        inputs = featurise(noise, self.bundle, self.filterbanks, run, smile)
        self.probabilities({name: value[None] for name, value in inputs.items()})
        self.prepare()

    def prepare(self):
        """Do now what the next clip would otherwise wait for and does not depend on it
        (openSMILE's configuration, ~25 ms): for a server, between requests."""
        if "egemaps" in self.bundle["inputs"]:
            try:
                prepare_egemaps(self.bundle["sample_rate"], self.bundle["egemaps_feature_set"])
            except DataError:
                pass   # the clip's own run fails the same way, and says so for that file

    def probabilities(self, arrays: dict, batch_size: int = 256) -> np.ndarray:
        """Softmax outputs ``[n, classes]`` for stacked, normalised model inputs (name -> array)."""
        self.check()
        n = len(next(iter(arrays.values())))
        try:
            out = [self._runner({name: arrays[name][i:i + batch_size].astype(np.float32) for name in self.input_names})
                   for i in range(0, n, batch_size)]
        except Exception as err:  # a model that does not fit its bundle; ONNX Runtime and Keras raise their own types
            raise DataError(f"{self.model_dir}: the model does not accept the inputs its bundle.json describes "
                            f"({type(err).__name__}); rebuild it with `dvc repro train`") from None
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)

    def featurise_files(self, paths, segment_s=None, progress: bool = True, segment_over=None) -> list[FileResult]:
        """``analyse_file`` for every path (in worker processes for many files): raw inputs."""
        from .parallel import pmap

        paths = [str(p) for p in paths]
        if "encoder" in self.bundle["inputs"]:
            # A stale encoder: one refusal, not one per file.
            bundle_encoder(self.model_dir, self.bundle, self.filterbanks, ENCODER_THREADS)
        work = partial(analyse_file, bundle=self.bundle, banks=self.filterbanks, segment_s=segment_s,
                       model_dir=self.model_dir, threads=ENCODER_THREADS, segment_over=segment_over)
        if len(paths) > 8:
            # The first file runs here: it loads openSMILE's library once, and forked workers inherit it.
            results = [work(paths[0])]
            # One ONNX Runtime thread per worker process: the workers already use every core.
            results += pmap(partial(work, threads=1), paths[1:], desc="predict", chunksize=8, disable=not progress)
        else:  # no worker start-up cost for a handful of files; a clip's eGeMAPS beside its encoder pass
            results = [work(p, pool=self.overlap()) for p in paths]
        return results

    def reference(self, paths, progress: bool = True) -> Reference:
        """The ``Reference`` made of ``paths`` (files of the voice, any emotion, no labels);
        ``DataError`` in one line for a file that fails or has no speech."""
        results = self.featurise_files(paths, progress=progress)
        for r in results:
            check_reference_result(r)
        return Reference.from_results(results)

    def analyse(self, paths, segment_s=None, grouping: str = "file", groups=None, progress: bool = True,
                reference: Reference | None = None, features=None, segment_over: float | None = None):
        """Featurise ``paths`` (in parallel for many files), normalise them by group, or with
        ``reference`` when given, and fill in calibrated probabilities. ``groups`` (one key per
        path, e.g. a corpus's speakers) overrides ``grouping``. ``features``: the paths'
        ``featurise_files`` results already computed (e.g. cached by a server). ``segment_over``:
        only files longer than that many seconds are segmented (``analyse_file``)."""
        paths = [str(p) for p in paths]
        if segment_s is not None and segment_s != SPEECH and features is None:
            # A grid's headline is the one speech segments give (``rows.time_summary``): the same
            # whatever the grid, and a phrase is not cut in half by it. It costs a second pass.
            on_speech = self.analyse(paths, SPEECH, grouping, groups, progress, reference, segment_over=segment_over)
        else:
            on_speech = None
        results = features if features is not None else self.featurise_files(paths, segment_s, progress, segment_over)
        emotions = emotion_names(self.bundle)
        keys = list(groups) if groups is not None else [group_key(p, grouping, emotions) for p in paths]
        normalise_results(results, self.bundle, keys, reference)
        good = [r for r in results if r.error is None and r.analysed]
        if good:
            probs = self.probabilities({name: np.concatenate([r.inputs[name] for r in good])
                                        for name in self.bundle["inputs"]})
            offset = 0
            for r in good:
                raw = probs[offset:offset + len(r.analysed)]
                cal = calibration_for(self.bundle, r.voice_clips)
                r.probabilities = apply_way(raw, cal)
                r.uncertain_below = cal["uncertain_below"]
                offset += len(r.analysed)
        for r, speech_r in zip(results, on_speech or []):
            r.summary_source = speech_r if speech_r.error is None else None
        return results


def check_signature(inputs: dict, output_shape, bundle: dict, path: Path):
    """One-line refusal when a model's inputs (name -> shape without the batch axis) or its
    output do not match what the bundle says it takes and gives: a foreign model file."""
    def fits(shape, want):
        return len(shape) == len(want) and all(not isinstance(d, int) or d == w for d, w in zip(shape, want))

    wrong = sorted(set(inputs) ^ set(bundle["inputs"]))
    wrong += [name for name in bundle["inputs"] if name in inputs and not fits(list(inputs[name]), bundle["shapes"][name])]
    if wrong or not fits(list(output_shape), [len(bundle["classes"])]):
        raise DataError(f"{path}: its inputs or outputs are not the ones {Path(path).parent / 'bundle.json'} describes "
                        f"({', '.join(wrong) or 'classes'}); a foreign file: rebuild both with `dvc repro train`")
