import subprocess
import sys

import pytest
import yaml

from ser.core.config import load_params, validate
from ser.core.errors import ConfigError

from .conftest import ROOT, checkout_env


def test_project_params_are_valid(params):
    assert validate(params) is params


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["labels"]["map"].update(calm="bored"), "labels.map.calm maps to unknown emotion 'bored'"),
    (lambda p: p["prepare"].update(folds=1), "prepare.folds must be >= 2"),
    (lambda p: p.update(seed=2 ** 32), "seed must be <= 4294967295"),
    (lambda p: p["normalize"].update(mode="person"), "normalize.mode must be one of global, utterance, speaker, corpus"),
    (lambda p: p["normalize"].update(prior_clips=-1), "normalize.prior_clips must be >= 0"),
    (lambda p: p["train"].update(balance="gender"), "train.balance must be one of none, speaker, corpus"),
    (lambda p: p["augment"].update(noise_snr_db=[30, 10]), "augment.noise_snr_db must be [low, high]"),
    (lambda p: p["train"].update(inputs=["features", "audio"]), "train.inputs has unknown entry 'audio'"),
    (lambda p: p["train"].update(lr=0), "train.lr must be > 0"),
    (lambda p: p["train"].update(lr=-0.01), "train.lr must be > 0"),
    (lambda p: p["manifest"]["corpora"].append("emodb"), "manifest.corpora has unknown entry 'emodb'"),
    # a corpus of one's own must be declared with its table; a misspelt corpus gets the nearest name
    (lambda p: p["manifest"]["corpora"].append("my_lab"),
     "manifest.corpora has unknown entry 'my_lab' (known: ravdess_speech, ravdess_song, crema_d, tess, savee, "
     "jl_corpus, esd, asvp_esd; a corpus of your own is declared with its table in manifest.tables)"),
    (lambda p: p["manifest"]["corpora"].append("savees"),
     "manifest.corpora has unknown entry 'savees' (did you mean savee?"),
    (lambda p: (p["manifest"].update(tables={"my_lab": None}), p["manifest"]["corpora"].append("my_lba")),
     "manifest.corpora has unknown entry 'my_lba' (did you mean my_lab? known: ravdess_speech"),
    (lambda p: p["manifest"]["corpora"].append("tess"), "manifest.corpora has duplicate entries"),
    (lambda p: p["manifest"].update(corpora=[]), "manifest.corpora must be a non-empty list"),
    (lambda p: p["manifest"].update(tables=["my_lab"]), "manifest.tables must be a mapping corpus name -> table path"),
    (lambda p: p["manifest"].update(tables={"my lab": "labels.csv"}),
     "manifest.tables.my lab is not a usable corpus name"),
    (lambda p: p["manifest"].update(tables={"my_lab": "/home/me/labels.csv"}),
     "manifest.tables.my_lab must be the table's path inside data/raw/my_lab, e.g. labels.csv "
     "(got '/home/me/labels.csv': is absolute (paths are relative to the corpus folder))"),
    (lambda p: p["manifest"].update(tables={"my_lab": "../labels.csv"}),
     "manifest.tables.my_lab must be the table's path inside data/raw/my_lab, e.g. labels.csv "
     "(got '../labels.csv': leaves the corpus folder (..))"),
    (lambda p: p["manifest"].update(tables={"my_lab": 3}), "manifest.tables.my_lab must be the table's path"),
    (lambda p: p["manifest"].pop("tables"), "manifest.tables is missing"),
    (lambda p: p["train"].update(inputs="features"), "train.inputs must be a non-empty list"),
    (lambda p: p["prepare"].update(split="by_actor"), "prepare.split must be one of speaker, random"),
    (lambda p: p["train"].update(epochs=2.5), "train.epochs must be an integer"),
    (lambda p: p["augment"]["methods"].append("reverb"), "augment.methods has unknown entry 'reverb'"),
    (lambda p: p["train"].update(mixup=-1), "train.mixup must be >= 0"),
    (lambda p: p["featurize"]["features"].append("pitch"), "featurize.features has unknown entry 'pitch'"),
    (lambda p: p["labels"].update(classes=["angry", "angry"]), "labels.classes has duplicate entries"),
    (lambda p: p["train"].pop("dropout"), "train.dropout is missing"),
    (lambda p: p["train"].update(batch_size="many"), "train.batch_size must be a number"),
    (lambda p: p["encoder"].update(layers=[]), "encoder.layers must be a non-empty list of layer numbers"),
    (lambda p: p["encoder"].update(layers=[2, 2]), "encoder.layers has duplicate entries"),
    (lambda p: p["encoder"].update(layers=["2"]), "encoder.layers must be a non-empty list of layer numbers"),
    (lambda p: p["encoder"].update(pooling="max"), "encoder.pooling must be one of mean, mean_std, std"),
    (lambda p: p["encoder"].update(weights=""), "encoder.weights must be `pinned` or a CTranslate2 Whisper model"),
    (lambda p: p["normalize"].update(file_share=1.5), "normalize.file_share must be <= 1"),
    (lambda p: p.pop("encoder"), "encoder.weights is missing"),
])
def test_invalid_params_name_the_key(params, edit, message):
    edit(params)
    with pytest.raises(ConfigError) as err:
        validate(params)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_numbers_written_without_a_dot_are_numbers(tmp_path):
    # YAML reads 1e-4 as the string "1e-4"; a researcher means the number.
    text = (ROOT / "params.yaml").read_text().replace("  lr: 0.001 ", "  lr: 1e-4 ").replace("epochs: 20", "epochs: '20'")
    (tmp_path / "params.yaml").write_text(text)
    params = load_params(tmp_path / "params.yaml")
    assert params["train"]["lr"] == 1e-4 and params["train"]["epochs"] == 20


def test_unreadable_params_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="params.yaml: line 2 is not valid YAML|params.yaml:.*not valid YAML"):
        load_params(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "missing.yaml")


STAGES = ["manifest", "prepare", "augment", "featurize", "egemaps", "encoder", "embed", "cv", "loco", "train"]


def test_every_stage_is_tested():
    assert sorted(STAGES) == sorted(p.stem for p in (ROOT / "stages").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("stage", STAGES)
def test_stage_refuses_bad_params_before_any_work(project_copy, stage):
    params = yaml.safe_load((project_copy / "params.yaml").read_text())
    params["train"]["lr"] = -1
    (project_copy / "params.yaml").write_text(yaml.safe_dump(params))
    run = subprocess.run([sys.executable, "-m", f"stages.{stage}"], cwd=project_copy, capture_output=True, text=True,
                         env=checkout_env())
    assert run.returncode == 2
    assert run.stderr.strip() == "error: params.yaml: train.lr must be > 0 (got -1)"
    assert sorted(p.name for p in project_copy.iterdir()) == ["params.yaml", "stages"]  # nothing written


# --- keys that are not the pipeline's --------------------------------------------------------


def _rename(section, old, new):
    return lambda p: p[section].update({new: p[section].pop(old)})


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["train"].update(learning_rate=0.01),
     "train.learning_rate is not a known key (did you mean train.lr?)"),
    (_rename("train", "lr", "learning_rate"), "train.learning_rate is not a known key (did you mean train.lr?)"),
    (lambda p: p.update(trian=p.pop("train")), "trian is not a known key (did you mean train?)"),
    (lambda p: (p.update(trian=p.pop("train")), p["trian"].pop("lr")), "trian is not a known key (did you mean train?)"),
    (lambda p: p.update(speach=p.pop("speech")), "speach is not a known key (did you mean speech?)"),
    (_rename("calibration", "bins", "bin"), "calibration.bin is not a known key (did you mean calibration.bins?)"),
    (lambda p: p["featurize"].update(hop=128), "featurize.hop is not a known key (did you mean featurize.hop_length?)"),
    (lambda p: p["prepare"].update(loudness=-20),
     "prepare.loudness is not a known key (did you mean prepare.loudness_dbfs?)"),
    (lambda p: p["train"].update(n_fft=512), "train.n_fft is not a known key (did you mean featurize.n_fft?)"),
    (lambda p: p["featurize"]["spectrogram"].update(width=94),
     "featurize.spectrogram.width is not a known key (known in featurize.spectrogram: duration_s, hop_length, n_mels)"),
    (lambda p: p.update(notes="x"), "notes is not a known key (known: audio, augment, baseline, calibration,"),
    # A look-alike that is itself a real key does not hide a missing one.
    (lambda p: p["manifest"].pop("asvp_include_noisy"), "manifest.asvp_include_noisy is missing"),
    (_rename("manifest", "tables", "table"), "manifest.table is not a known key (did you mean manifest.tables?)"),
    (lambda p: p["train"].pop("specaugment"), "train.specaugment is missing"),
])
def test_unknown_keys_are_refused_with_the_nearest_known_key(params, edit, message):
    edit(params)
    with pytest.raises(ConfigError) as err:
        validate(params)
    assert str(err.value).startswith(f"params.yaml: {message}")
    assert "\n" not in str(err.value)


def test_corpora_described_by_a_table_are_declared_in_manifest_tables(params):
    params["manifest"].update(tables={"my_lab": None, "savee": "meta/labels.csv", "other-lab": "labels.csv"})
    params["manifest"]["corpora"].append("my_lab")   # declared but not listed (other-lab): not used, not an error
    assert validate(params) is params


def test_free_form_mappings_take_any_key(params):
    params["labels"]["map"]["bored"] = "neutral"   # any corpus label may be mapped
    assert validate(params) is params


def test_a_checker_refuses_keys_it_did_not_read():
    # The reusable part: check a mapping of one's own (a model bundle's, say) and refuse the rest.
    from ser.core.schema import Checker

    bundle = {"sample_rate": 16000, "classes": ["a", "b"], "extra": {"x": 1}, "sample_rat": 1}
    checker = Checker(bundle, "bundle.json")
    checker.number("sample_rate", low=1, integer=True)
    checker.get("classes")
    assert checker.unknown_keys() == ["extra", "sample_rat"]
    with pytest.raises(ConfigError, match=r"^bundle.json: extra is not a known key \(known: classes, sample_rate\)$"):
        checker.reject_unknown()
    checker.get("extra")   # read whole: free-form
    with pytest.raises(ConfigError,
                       match=r"^bundle.json: sample_rat is not a known key \(did you mean sample_rate\?\)$"):
        checker.reject_unknown()


def _write_params(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def _line_of(text, fragment):
    return text[:text.index(fragment)].count("\n") + 1


@pytest.mark.parametrize("original, doubled, key", [
    ("  lr: 0.001 ", "  lr: 0.001\n  lr: 0.01 ", "train.lr"),
    ("    calm: neutral ", "    calm: neutral\n    calm: sad ", "labels.map.calm"),
    ("train:\n", "train:\n  inputs: [features]\ntrain:\n", "train"),
])
def test_duplicate_keys_are_refused_with_their_line(tmp_path, original, doubled, key):
    text = (ROOT / "params.yaml").read_text()
    assert original in text
    text = text.replace(original, doubled)
    lines = text.splitlines()
    line = next(i for i in range(_line_of(text, doubled) + 1, len(lines) + 1)
                if lines[i - 1].strip().startswith(key.rpartition(".")[2] + ":"))   # the second occurrence
    path = _write_params(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_params(path)
    assert str(err.value) == f"{path}: line {line}: duplicate key {key}"


def test_the_project_params_file_loads(tmp_path):
    assert load_params(ROOT / "params.yaml")["train"]["lr"] > 0


# --- ranges, and keys that must agree ---------------------------------------------------------


def _no_encoder(p):
    p["train"]["inputs"] = ["features", "egemaps"]


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["featurize"].update(n_fft=10_000_000), "featurize.n_fft must be <= 65536 (got 10000000)"),
    (lambda p: p["featurize"].update(n_fft=4096, hop_length=32),
     "featurize.hop_length must be >= featurize.n_fft / 64 = 64 (got 32)"),
    (lambda p: p["featurize"].update(hop_length=2048), "featurize.hop_length must be <= featurize.n_fft (2048 > 1024)"),
    (lambda p: p["featurize"]["spectrogram"].update(hop_length=2048),
     "featurize.spectrogram.hop_length must be <= featurize.n_fft (2048 > 1024)"),
    (lambda p: p["featurize"]["spectrogram"].update(duration_s=30, hop_length=64),
     "featurize.spectrogram.hop_length 64 makes the spectrogram image 7501 frames wide"),
    (lambda p: (_no_encoder(p), p["audio"].update(sample_rate=8000)),
     "audio.sample_rate 8000 is too low for featurize.features: contrast (its top octave band starts at 6400 Hz, "
     "which needs the Nyquist frequency, sample_rate / 2, above it; 8000 Hz gives 4000 Hz: use a sample rate above "
     "12800 or drop contrast)"),
    (lambda p: (_no_encoder(p), p["audio"].update(sample_rate=12800)), "audio.sample_rate 12800 is too low"),
    (lambda p: (_no_encoder(p), p["audio"].update(sample_rate=96000), p["featurize"].update(n_fft=128, hop_length=64),
                p["featurize"]["spectrogram"].update(hop_length=128)),
     "featurize.n_fft 128 is too short for featurize.features: contrast at audio.sample_rate 96000 (its 200-400 Hz "
     "band gets no FFT bin; bins are sample_rate / n_fft = 750 Hz apart)"),
    (lambda p: (p["featurize"].update(n_fft=256, hop_length=64, n_mels=128),
                p["featurize"]["spectrogram"].update(hop_length=256)),
     "featurize.n_mels 128 leaves 12 mel filters without an FFT bin at featurize.n_fft 256 and audio.sample_rate "
     "16000: dead rows in the log-mel and mfcc blocks (lower it or raise featurize.n_fft)"),
    (lambda p: (p["featurize"].update(n_fft=512, hop_length=128), p["featurize"]["spectrogram"].update(n_mels=256)),
     "featurize.spectrogram.n_mels 256 leaves 23 mel filters without an FFT bin"),
    (lambda p: p["audio"].update(sample_rate=22050),
     "audio.sample_rate must be 16000 when train.inputs has encoder (Whisper's encoder takes 16 kHz audio; got 22050)"),
    (lambda p: p["prepare"].update(loudness_dbfs=-3), "prepare.loudness_dbfs must be <= -6 (got -3)"),
    (lambda p: p["prepare"].update(high_pass_hz=-1), "prepare.high_pass_hz must be >= 0 (got -1)"),
    (lambda p: p["prepare"].update(high_pass_hz="low"), "prepare.high_pass_hz must be a number"),
    (lambda p: p["prepare"].update(loudness_dbfs=-60), "prepare.loudness_dbfs must be >= -40 (got -60)"),
    (lambda p: p["prepare"].update(loudness_dbfs="loud"), "prepare.loudness_dbfs must be a number"),
    (lambda p: p["speech"].update(threshold=0), "speech.threshold must be > 0 (got 0)"),
    (lambda p: p["speech"].update(threshold=1), "speech.threshold must be < 1 (got 1)"),
    (lambda p: p["speech"].update(min_speech_s=-0.1), "speech.min_speech_s must be >= 0 (got -0.1)"),
    (lambda p: p["speech"].update(min_speech_s=11), "speech.min_speech_s must be <= 10 (got 11)"),
    (lambda p: p["calibration"].update(uncertain_below=1.5), "calibration.uncertain_below must be <= 1 (got 1.5)"),
    (lambda p: p["calibration"].update(uncertain_below=-0.5), "calibration.uncertain_below must be >= 0 (got -0.5)"),
    (lambda p: p["calibration"].update(bins=1), "calibration.bins must be >= 2 (got 1)"),
    (lambda p: p["calibration"].update(bins=101), "calibration.bins must be <= 100 (got 101)"),
    (lambda p: p["calibration"].update(bins=7.5), "calibration.bins must be an integer (got 7.5)"),
    (lambda p: p["calibration"].pop("bins"), "calibration.bins is missing"),
    (lambda p: p["calibration"].update(confident_accuracy=1.5), "calibration.confident_accuracy must be <= 1"),
    (lambda p: p["calibration"].update(group_min_clips=1), "calibration.group_min_clips must be >= 2 (got 1)"),
    (lambda p: p["reference"].update(sizes=[1, 3, "all"]), "reference.sizes must list distinct clip counts 0-1000 "
                                                           "with 0 and all among them"),
    (lambda p: p["reference"].update(sizes=[0, 3, 3, "all"]), "reference.sizes must list distinct"),
    (lambda p: p["reference"].update(sizes=[0, -1, "all"]), "reference.sizes must list distinct"),
    (lambda p: p["reference"].update(draws=0), "reference.draws must be >= 1 (got 0)"),
    (lambda p: p["normalize"].update(var_prior_clips=-1), "normalize.var_prior_clips must be >= 0"),
    (lambda p: p["normalize"].update(small_groups=2), "normalize.small_groups must be <= 1"),
    (lambda p: p["normalize"].update(lone_file="alone"), "normalize.lone_file must be one of"),
    (lambda p: p["train"].update(model="svm"), "train.model must be one of"),
    (lambda p: p["baseline"].update(linear_c=0), "baseline.linear_c must be > 0"),
    (lambda p: p.pop("speech"), "speech.threshold is missing"),
    (lambda p: p["train"].update(filters=100_000), "train.filters must be <= 512"),
    # What the model bundle's schema (ser.bundle.format.check_schema) refuses, training must refuse first.
    (lambda p: p["prepare"].update(min_duration_s=90), "prepare.min_duration_s must be <= 60"),
    (lambda p: p["prepare"].update(silence_top_db=150), "prepare.silence_top_db must be <= 120"),
])
def test_ranges_and_cross_key_constraints_name_the_key(params, edit, message):
    edit(params)
    with pytest.raises(ConfigError) as err:
        validate(params)
    assert str(err.value).startswith(f"params.yaml: {message}")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("edit", [
    lambda p: (_no_encoder(p), p["audio"].update(sample_rate=22050)),   # contrast fits; no encoder
    lambda p: (_no_encoder(p), p["audio"].update(sample_rate=8000), p["featurize"]["features"].remove("contrast")),
    lambda p: (p["featurize"].update(n_fft=65536, hop_length=1024),
               p["featurize"]["spectrogram"].update(hop_length=1024)),
    lambda p: p.update(speech={"threshold": 0.9, "min_speech_s": 0},
                       calibration={"uncertain_below": 0, "confident_accuracy": 1, "group_min_clips": 2,
                                    "prior_correction": True, "bins": 100},
                       prepare=dict(p["prepare"], loudness_dbfs=-40)),
])
def test_settings_within_the_bounds_pass(params, edit):
    edit(params)
    assert validate(params) is params


def test_the_contrast_check_agrees_with_dsp():
    # validate must refuse exactly the (rate, n_fft) pairs ser.audio.dsp.contrast_bands cannot use.
    from ser.audio import dsp
    from ser.core.config import CONTRAST_BANDS, CONTRAST_FMIN_HZ, empty_contrast_band

    for rate in (4000, 8000, 12800, 12802, 16000, 22050, 44100, 96000):
        for n_fft in (64, 100, 127, 128, 256, 401, 1024, 65536):
            refused = CONTRAST_FMIN_HZ * 2 ** (CONTRAST_BANDS - 1) >= rate / 2 or empty_contrast_band(rate, n_fft)
            try:
                dsp.contrast_bands(rate, n_fft)
                fails = False
            except (ValueError, IndexError):
                fails = True
            assert bool(refused) == fails, (rate, n_fft)


def test_the_mel_check_agrees_with_librosa():
    import warnings

    import librosa
    import numpy as np

    from ser.core.config import empty_mel_filters

    for rate in (8000, 16000, 44100):
        for n_fft in (64, 256, 512, 1024):
            for n_mels in (8, 64, 128, 256):
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    bank = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels)
                warned = any("Empty filters" in str(w.message) for w in caught)
                counted = empty_mel_filters(rate, n_fft, n_mels)
                assert (counted > 0) == warned, (rate, n_fft, n_mels)
                assert counted <= int(np.sum(bank.max(axis=1) == 0)), (rate, n_fft, n_mels)


def test_the_encoder_sample_rate_is_whisper_s():
    from ser.core import config
    from ser.features import encoder

    assert config.ENCODER_SAMPLE_RATE == encoder.SAMPLE_RATE
