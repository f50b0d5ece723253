"""Shared fixtures: tiny audio files laid out with each corpus's real naming conventions."""

import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Real names from each release's layout (a few per corpus, odd ones included).
FIXTURE_FILES = {
    "ravdess_speech": [
        "Actor_01/03-01-01-01-01-01-01.wav",   # neutral, male
        "Actor_02/03-01-02-01-01-01-02.wav",   # calm -> neutral, female
        "Actor_03/03-01-08-02-02-02-03.wav",   # surprised
        "Actor_04/03-01-07-01-01-02-04.wav",   # disgust
    ],
    "ravdess_song": [
        "Actor_01/03-02-03-01-01-01-01.wav",   # happy
        "Actor_02/03-02-06-02-02-01-02.wav",   # fearful
    ],
    "crema_d": [
        "AudioWAV/1001_DFA_ANG_XX.wav",
        "AudioWAV/1002_IEO_HAP_HI.wav",
        "AudioWAV/1003_TIE_SAD_LO.wav",
        "AudioWAV/1004_ITS_FEA_MD.wav",
    ],
    "tess": [
        "TESS Toronto emotional speech set data/OAF_neutral/OA_bite_neutral.wav",
        "TESS Toronto emotional speech set data/OAF_Pleasant_surprise/OAF_back_ps.wav",
        "TESS Toronto emotional speech set data/YAF_fear/YAF_bath_fear.wav",
        "TESS Toronto emotional speech set data/YAF_disgust/YAF_chalk_disgust.wav",
    ],
    "savee": [
        "ALL/DC_a01.wav",
        "ALL/JE_sa03.wav",
        "ALL/JK_su15.wav",
        "ALL/KL_n30.wav",
    ],
    "jl_corpus": [
        "Raw JL corpus (unchecked and unannotated)/JL(wav+txt)/female1_angry_1a_1.wav",
        "Raw JL corpus (unchecked and unannotated)/JL(wav+txt)/male2_sad_10b_2.wav",
        "Raw JL corpus (unchecked and unannotated)/JL(wav+txt)/female2_anxious_5a_1.wav",
    ],
    "esd": [
        "0011/Angry/train/0011_000351.wav",
        "0011/Surprise/test/0011_001401.wav",
        "0012/Neutral/evaluation/0012_000001.wav",
    ],
    "asvp_esd": [
        "actor_1/03-01-05-02-11-01-02-03-01.wav",            # angry speech, actor 1 (odd: female), Chinese
        "actor_128/03-01-01-01-01-128-02-02-04-01.wav",      # boredom speech: not in the class set
        "actor_/03-02-13-01-23-112-02-02-02-66.wav",         # non-speech breath in the `actor_` folder: rejected
    ],
}


def write_tone(path: Path, seconds=0.6, sample_rate=16000, freq=220.0, channels=1, subtype="PCM_16"):
    """A short tone with a little noise (speech-like enough for the feature code)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(int(freq))
    y = 0.3 * np.sin(2 * np.pi * freq * t) * np.hanning(len(t)) + 0.01 * rng.standard_normal(len(t))
    data = np.stack([y] * channels, axis=1) if channels > 1 else y
    sf.write(path, data, sample_rate, subtype=subtype)
    return path


# Real speech (JL-Corpus, 44.1 kHz) from ../shared: predict answers `no speech` for tones.
SPEECH_SAMPLES = sorted((ROOT.parent / "shared" / "samples" / "jl_corpus").glob("*.wav"))


def write_speech(path: Path, index=0, gain_db=0.0, sample_rate=None, subtype="PCM_16", seconds=None) -> Path:
    """One of the real JL-Corpus recordings at ``gain_db`` (and ``sample_rate``, first
    ``seconds``), written to ``path``."""
    y, sr = sf.read(SPEECH_SAMPLES[index], dtype="float32")
    if sample_rate and sample_rate != sr:
        from ser.audio.dsp import resample

        y, sr = resample(y, sr, sample_rate), sample_rate
    if seconds:
        y = y[:int(seconds * sr)]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y * 10 ** (gain_db / 20), sr, subtype=subtype)
    return path


@pytest.fixture
def raw_dir(tmp_path) -> Path:
    """A data/raw tree with every corpus's fixture names as tiny wav files."""
    raw = tmp_path / "data" / "raw"
    for c, (corpus, names) in enumerate(FIXTURE_FILES.items()):
        for i, name in enumerate(names):
            # A tone of its own for every file: identical audio under two names is a content duplicate.
            write_tone(raw / corpus / name, freq=150 + 20 * i + c)
    (raw / "crema_d" / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n1002,21,Female,Caucasian,Not Hispanic\n")
    jl_folder = raw / "jl_corpus" / "Raw JL corpus (unchecked and unannotated)" / "JL(wav+txt)"
    (jl_folder / "female1_angry_1a_1.txt").write_text("text")
    return raw


@pytest.fixture
def params() -> dict:
    """The project's params.yaml, as a fresh dict per test."""
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """A copy of the stage scripts and params in a scratch folder, to run stages as a user would."""
    dst = tmp_path / "project"
    dst.mkdir()
    for name in ("stages", "params.yaml"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst / name)
    return dst


def checkout_env(**extra) -> dict:
    """Environment for subprocesses that puts this checkout's ``ser`` first on the import path
    (never an installed copy) and this interpreter's bin folder first on PATH."""
    import os
    import sys

    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                **extra)


TINY_FEATURIZE = {"features": ["mfcc", "rms"], "stats": ["mean"], "n_mfcc": 13, "n_mels": 32, "n_fft": 1024,
                  "hop_length": 256, "spectrogram": {"n_mels": 32, "hop_length": 512, "duration_s": 1.0},
                  "n_examples": 0}


def analysis_settings(inputs=("features", "spectrogram"), featurize=None, encoder=None, sample_rate=16000):
    """A ``Bundle.analysis`` (what ``analyse_file`` needs) with training's cleaning and speech
    defaults, for unit tests that analyse files without a trained model."""
    from ser.bundle.format import Analysis, Cleaning, SpeechCheck

    return Analysis(cleaning=Cleaning(sample_rate, 30, 0.3, -23, 30), speech=SpeechCheck(0.5, 0.3),
                    inputs=tuple(inputs), featurize=featurize or TINY_FEATURIZE, egemaps_feature_set="eGeMAPSv02",
                    encoder=encoder)


def tiny_model_params(mode="speaker", inputs=("features", "spectrogram"), model="network") -> dict:
    """params.yaml-shaped settings for a tiny model bundle (tests of predict and evaluate)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["featurize"] = TINY_FEATURIZE
    params["normalize"].update(mode=mode, prior_clips=10, var_prior_clips=10)
    params["train"].update(model=model, inputs=list(inputs), filters=2, dense_units=4, epochs=1)
    return params


def save_tiny_model(model_dir: Path, mode="speaker", seed=0, inputs=("features", "spectrogram"),
                    uncertain_below=0.5, model="network") -> str:
    """Build an (untrained) tiny network and save it as a bundle the way the train stage does."""
    from ser.bundle.export import save_trained_model
    from ser.model.network import build_model, set_determinism

    params = tiny_model_params(mode, inputs, model)
    params["calibration"]["uncertain_below"] = uncertain_below
    set_determinism(seed)
    shapes = {"features": (14,), "spectrogram": (32, 32), "egemaps": (88,)}
    shapes = {name: shapes[name] for name in inputs}
    model = build_model(shapes, len(params["labels"]["classes"]), params["train"])
    rng = np.random.default_rng(seed)
    priors = {name: {"mean": rng.normal(0, 5, shape[0]).tolist(), "var": rng.uniform(1, 4, shape[0]).tolist()}
              for name, shape in shapes.items()}
    if "spectrogram" in priors:
        priors["spectrogram"] = {"mean": [0.5] * 32, "var": [0.04] * 32}
    calibration = {"group_min_clips": 10, **{way: {"temperature": 1.0, "uncertain_below": uncertain_below}
                                             for way in ("file", "reference", "group")}}
    return save_trained_model(model_dir, model, params, shapes, priors, calibration)


@pytest.fixture(scope="session")
def built_model(tmp_path_factory):
    """``built_model(**settings)``: the folder of a tiny bundle saved by ``save_tiny_model(...,
    **settings)``, built once per session for each distinct settings (building and exporting
    one costs seconds). Read-only: a test that edits a bundle takes a copy (``model_copy``)."""
    import inspect

    defaults = {name: parameter.default for name, parameter in inspect.signature(save_tiny_model).parameters.items()
                if parameter.default is not inspect.Parameter.empty}
    built = {}

    def folder(**settings) -> Path:
        key = tuple(sorted((name, tuple(value) if isinstance(value, list) else value)   # seed=0 is no seed
                           for name, value in {**defaults, **settings}.items()))
        if key not in built:
            path = tmp_path_factory.mktemp("model")
            save_tiny_model(path, **settings)
            built[key] = path
        return built[key]

    return folder


@pytest.fixture
def model_copy(built_model, tmp_path):
    """``model_copy(dst=None, **settings)``: a private copy (``shutil.copytree``) of the
    session's tiny bundle with those settings, at ``dst`` (default ``tmp_path / "model"``), for
    tests that edit, replace or delete its files."""
    def copy(dst=None, **settings) -> Path:
        dst = Path(dst) if dst is not None else tmp_path / "model"
        shutil.copytree(built_model(**settings), dst)
        return dst

    return copy


@pytest.fixture(scope="session")
def egemaps_model(built_model) -> Path:
    """A tiny bundle that takes eGeMAPS too (every branch predict may compute), shared read-only
    by the serve and browser tests (each runs openSMILE in a server subprocess)."""
    return built_model(inputs=("features", "spectrogram", "egemaps"))


@pytest.fixture(scope="session")
def tiny_model(built_model) -> Path:
    """A model bundle folder (keras + onnx + bundle.json) shared read-only by predict tests."""
    return built_model()


def softmax_reference(model, inputs: dict) -> np.ndarray:
    """A Keras model's probabilities computed independently of its output layer: the input of
    its ``emotion`` layer from Keras, then that layer's kernel and bias and a softmax in NumPy
    (float64)."""
    import keras

    head = model.get_layer("emotion")
    hidden = keras.Model(model.inputs, head.input).predict(inputs, verbose=0)
    kernel, bias = head.get_weights()
    logits = hidden.astype(np.float64) @ kernel + bias
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@contextmanager
def running_server(model_dir, *args, tmpdir=None, log=None):
    """``python -m ser serve`` on a free loopback port (``--port 0``) with this checkout's ser:
    yields its URL (from the line it prints when ready) and stops it afterwards. ``tmpdir``
    becomes its TMPDIR; its stderr goes to ``log``."""
    import queue
    import subprocess
    import sys
    import threading

    env = checkout_env(**({"TMPDIR": str(tmpdir)} if tmpdir else {}))
    err = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "ser", "serve", "--model", str(model_dir), "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        try:
            line = lines.get(timeout=180)
        except queue.Empty:
            line = ""
        assert line.startswith("serving http://127.0.0.1:"), f"serve did not start: {line!r} " + (
            open(log).read() if log else "")
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if log:
            err.close()
