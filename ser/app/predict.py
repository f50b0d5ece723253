"""Prediction with a trained model bundle: the same cleaning and feature code as training.

A bundle is a folder (``models/``) with ``bundle.json``, ``model.keras`` and ``model.onnx``,
all written by the train stage and stamped with one weights fingerprint. ``Predictor`` uses
the ONNX model through ONNX Runtime when it is there, so labelling files never has to import
TensorFlow. Inputs are normalized by speaker group (``ser.model.normalize``) exactly as in training.
Features come from the bundle's filterbanks (``ser.bundle.format.load_filterbanks``), openSMILE's
C library and the bundle's exported encoder (``encoder.onnx``, ONNX Runtime), so labelling a
file imports neither librosa, scipy.signal, scikit-learn, pandas nor TensorFlow.
"""

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ser.app.analysis import SPEECH, FileResult, analyse_file, bundle_encoder, featurize, start_egemaps
from ser.audio import speech
from ser.bundle.format import ENCODER_FILE, Analysis, Bundle, load_bundle, load_filterbanks
from ser.bundle.runtime import Runtime, choose_backend
from ser.core.errors import DataError
from ser.features.egemaps import preload as preload_egemaps
from ser.model.calibration import apply_way


def emotion_names(bundle: Bundle) -> set:
    """Lower-case names that mark a folder as an emotion, not a speaker: the bundle's classes
    and every corpus label of its ``label_map``."""
    return {name.lower() for name in [*bundle.classes, *bundle.label_map]}


def group_key(path: str, grouping: str, emotions=frozenset()) -> str:
    """Which clips are one speaker: ``file`` (a file and its segments), ``folder`` (every file
    in a folder) or ``all`` (every input). A folder named after an emotion (any case; e.g.
    ``angry/``) is never a group: standardizing it would remove the very emotion to be
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
    """Clips of the voice to be labelled, given only to normalize it (``predict --reference``):
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

    def normalization_line(self, weight: float) -> str:
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


def normalize_results(results, bundle: Bundle, groups, reference: Reference | None = None) -> None:
    """Normalize every analysed result's inputs in place, group by group, as in training.

    ``groups`` gives one key per result; all analysed segments of the results sharing a key
    form one group of clips (one speaker) under speaker or corpus normalization. With a
    ``reference``, every result is normalized with the reference's statistics alone (shrunk
    as a group of its size): the targets do not join them, so a clip's answer never depends
    on which other clips were labelled with it.
    """
    from ser.model import normalize

    norm = bundle.normalization
    good = [(r, g) for r, g in zip(results, groups) if r.error is None and r.analysed]
    if not good:
        return
    if reference is not None and norm.by_group:
        for name in bundle.inputs:
            mean, var, _, weight = normalize.reference_statistics(reference.inputs[name], norm.priors[name],
                                                                  norm.prior_clips, norm.var_prior_clips)
            for r, _ in good:
                r.inputs[name] = normalize.standardize(r.inputs[name], mean, var)
        for r, _ in good:
            r.group, r.voice_clips, r.normalization = "reference", reference.clips, reference.normalization_line(weight)
        return
    keys = np.concatenate([[g] * len(r.analysed) for r, g in good])
    for name in bundle.inputs:
        stacked = np.concatenate([r.inputs[name] for r, _ in good])
        normalized, used = normalize.normalize(stacked, keys, norm.mode, norm.priors[name], norm.prior_clips,
                                               norm.var_prior_clips, norm.lone_file)
        offset = 0
        for r, g in good:
            r.inputs[name] = normalized[offset:offset + len(r.analysed)]
            offset += len(r.analysed)
    for r, g in good:
        r.group = g
        r.normalization = normalize.describe(norm.mode, {g: used[g]} if g in used else used)
        if reference is not None:
            r.normalization += "; the reference is not used: this model is not normalized by speaker"
        # The clip's voice as far as the statistics know it: the other clips of its group.
        r.voice_clips = used[g][0] - 1 if g in used else 0


@dataclass(frozen=True)
class Execution:
    """Where ``Predictor.featurize_files`` runs the per-file analysis. Up to ``in_process_files``
    files: in this process, each clip's eGeMAPS on a thread beside its speech check and encoder
    (no worker start-up cost for a handful of files). More: the first file here (it loads
    openSMILE's library once, and forked workers inherit it), the rest in worker processes
    (``ser.core.parallel.pmap``: a local pool, or Dask when ``SER_DASK_SCHEDULER`` is set), one
    ONNX Runtime thread each, since the workers already use every core. ``encoder_threads``:
    the encoder's threads in this process. One: beside it, the clip's eGeMAPS takes the other
    core; a second thread gained 4 ms of 44 on a 3-s clip alone and lost more to the
    contention (BENCHMARKS.md section 7)."""

    in_process_files: int = 8
    encoder_threads: int = 1
    worker_threads: int = 1
    chunksize: int = 8


class Predictor:
    """Calibrated class probabilities for audio files from a model bundle: the per-file analysis
    (``analyse_file``) under an ``Execution`` policy, normalization by voice (or a
    ``Reference``), the model ``Runtime`` (ONNX Runtime if exported, else Keras) and the
    calibration that matches how each clip was normalized."""

    def __init__(self, model_dir="models", backend: str = "auto", execution: Execution = Execution()):
        self.model_dir = Path(model_dir)
        self.bundle = load_bundle(self.model_dir)
        self.filterbanks = load_filterbanks(self.model_dir, self.bundle)
        self.classes = list(self.bundle.classes)
        self.execution = execution
        if self.bundle.analysis.encoder is not None and not (self.model_dir / ENCODER_FILE).is_file():
            raise DataError(f"{self.model_dir / ENCODER_FILE}: not found (rebuild it with `dvc repro train`)")
        self.backend = choose_backend(self.model_dir, self.bundle, backend)
        self._runtime = None  # loaded on first use: after feature workers have forked, never before
        self._overlap = None

    @property
    def settings(self) -> Analysis:
        return self.bundle.analysis

    def check(self):
        """Load the model now (and verify its fingerprints) rather than at the first batch."""
        if self._runtime is None:
            if self.backend == "keras":
                # openSMILE's library aborts when it is first loaded in a process that has built
                # a Keras model (serve --backend keras crashed warming up): load it first.
                self.preload()
            self._runtime = Runtime(self.model_dir, self.bundle, self.backend)

    def overlap(self):
        """A one-thread executor for the part of a clip's featurization that runs beside the
        rest (``featurize``); made on first use, never before worker processes fork."""
        if self._overlap is None:
            from concurrent.futures import ThreadPoolExecutor

            self._overlap = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ser-featurize")
        return self._overlap

    def warm_up(self):
        """Load everything a prediction uses (the model, the encoder, the speech detector,
        openSMILE's library) and run each once on a second of noise, so that a long-running
        caller (``serve``) answers its first request as fast as the next ones."""
        self.check()
        settings = self.settings
        noise = (0.05 * np.random.default_rng(0).standard_normal(settings.sample_rate)).astype(np.float32)
        speech.speech_seconds(noise, settings.sample_rate, settings.speech.threshold)
        run = None
        if settings.encoder is not None:
            run = bundle_encoder(self.model_dir, settings, self.filterbanks, self.execution.encoder_threads)
        smile = start_egemaps(noise, settings, self.overlap())
        inputs = featurize(noise, settings, self.filterbanks, run, smile)
        self.probabilities({name: value[None] for name, value in inputs.items()})
        self.preload()

    def preload(self):
        """Do now what the next clip would otherwise wait for and does not depend on it
        (openSMILE's configuration, ~25 ms): for a server, between requests."""
        if "egemaps" in self.settings.inputs:
            try:
                preload_egemaps(self.settings.sample_rate, self.settings.egemaps_feature_set)
            except DataError:
                pass   # the clip's own run fails the same way, and says so for that file

    def probabilities(self, arrays: dict, batch_size: int = 256) -> np.ndarray:
        """Softmax outputs ``[n, classes]`` for stacked, normalized model inputs (name -> array)."""
        self.check()
        return self._runtime(arrays, batch_size)

    def featurize_files(self, paths, segment_s=None, progress: bool = True, segment_over=None) -> list[FileResult]:
        """``analyse_file`` for every path, where ``self.execution`` says: raw inputs."""
        from ser.core.parallel import pmap

        paths, policy = [str(p) for p in paths], self.execution
        if self.settings.encoder is not None:
            # A stale encoder: one refusal, not one per file.
            bundle_encoder(self.model_dir, self.settings, self.filterbanks, policy.encoder_threads)
        work = partial(analyse_file, settings=self.settings, banks=self.filterbanks, segment_s=segment_s,
                       model_dir=self.model_dir, threads=policy.encoder_threads, segment_over=segment_over)
        if len(paths) <= policy.in_process_files:
            return [work(p, pool=self.overlap()) for p in paths]
        results = [work(paths[0])]
        results += pmap(partial(work, threads=policy.worker_threads), paths[1:], desc="predict",
                        chunksize=policy.chunksize, disable=not progress)
        return results

    def reference(self, paths, progress: bool = True) -> Reference:
        """The ``Reference`` made of ``paths`` (files of the voice, any emotion, no labels);
        ``DataError`` in one line for a file that fails or has no speech."""
        results = self.featurize_files(paths, progress=progress)
        for r in results:
            check_reference_result(r)
        return Reference.from_results(results)

    def analyse(self, paths, segment_s=None, grouping: str = "file", groups=None, progress: bool = True,
                reference: Reference | None = None, features=None, segment_over: float | None = None):
        """Featurize ``paths`` (``featurize_files``), normalize them by group, or with
        ``reference`` when given, and fill in calibrated probabilities. ``groups`` (one key per
        path, e.g. a corpus's speakers) overrides ``grouping``. ``features``: the paths'
        ``featurize_files`` results already computed (e.g. cached by a server). ``segment_over``:
        only files longer than that many seconds are segmented (``analyse_file``)."""
        paths = [str(p) for p in paths]
        if segment_s is not None and segment_s != SPEECH and features is None:
            # A grid's headline is the one speech segments give (``rows.time_summary``): the same
            # whatever the grid, and a phrase is not cut in half by it. It costs a second pass.
            on_speech = self.analyse(paths, SPEECH, grouping, groups, progress, reference, segment_over=segment_over)
        else:
            on_speech = None
        results = features if features is not None else self.featurize_files(paths, segment_s, progress, segment_over)
        emotions = emotion_names(self.bundle)
        keys = list(groups) if groups is not None else [group_key(p, grouping, emotions) for p in paths]
        normalize_results(results, self.bundle, keys, reference)
        good = [r for r in results if r.error is None and r.analysed]
        if good:
            probs = self.probabilities({name: np.concatenate([r.inputs[name] for r in good])
                                        for name in self.bundle.inputs})
            offset = 0
            for r in good:
                raw = probs[offset:offset + len(r.analysed)]
                way = self.bundle.way(r.voice_clips)
                r.probabilities = apply_way(raw, way)
                r.uncertain_below = way["uncertain_below"]
                offset += len(r.analysed)
        for r, speech_r in zip(results, on_speech or []):
            r.summary_source = speech_r if speech_r.error is None else None
        return results
