"""Real JL-Corpus recordings (44.1 kHz, none of the training corpora's rate) through manifest -> prepare -> featurize.

The five clips in ``../shared/samples/jl_corpus`` keep their original names; they are laid out
as in the release (``Raw JL corpus (unchecked and unannotated)/JL(wav+txt)/``) and run through
the library functions the stages use.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.audio import pack
from ser.data.manifest import build_manifest
from ser.data.preparation import clean_clip
from ser.features.handcrafted import extract, feature_names, spectrogram_frames

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples" / "jl_corpus"
SECONDARY = ["anxious", "encouraging"]  # the two secondary emotions among the five samples

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"{SAMPLES} is absent (the real JL clips live in ../shared)")


@pytest.fixture
def jl_raw(tmp_path) -> Path:
    raw = tmp_path / "data" / "raw"
    folder = raw / "jl_corpus" / "Raw JL corpus (unchecked and unannotated)" / "JL(wav+txt)"
    folder.mkdir(parents=True)
    for clip in sorted(SAMPLES.glob("*.wav")):
        shutil.copy(clip, folder / clip.name)
    return raw


def test_samples_are_what_the_test_expects():
    names = sorted(p.name for p in SAMPLES.glob("*.wav"))
    assert names == ["female1_angry_1a_1.wav", "female1_anxious_15a_2.wav", "male2_encouraging_2b_2.wav",
                     "male2_happy_3b_2.wav", "male2_sad_4a_2.wav"]
    assert {sf.info(str(SAMPLES / n)).samplerate for n in names} == {44100}


def test_manifest_keeps_the_primary_emotions_and_counts_the_secondary(jl_raw, params):
    params["manifest"]["corpora"] = ["jl_corpus"]
    manifest, excluded, stats = build_manifest(jl_raw, params, log=lambda _: None)
    assert sorted(manifest.emotion) == ["angry", "happy", "sad"]
    assert stats["dropped_labels"] == {"jl_corpus": {"anxious": 1, "encouraging": 1}}
    assert excluded.empty and set(manifest.language) == {"en"}
    assert dict(zip(manifest.speaker, manifest.gender)) == {"jl_female1": "female", "jl_male2": "male"}


def test_all_five_real_clips_through_manifest_prepare_featurize(jl_raw, params):
    params["manifest"]["corpora"] = ["jl_corpus"]
    params["labels"]["classes"] = params["labels"]["classes"] + SECONDARY  # let the secondary ones through too
    manifest, excluded, _ = build_manifest(jl_raw, params, log=lambda _: None)
    assert len(manifest) == 5 and excluded.empty
    rate = params["audio"]["sample_rate"]
    cfg = params["featurize"]
    for path in manifest.path:
        pcm, reason = clean_clip(path, rate, params["prepare"]["silence_top_db"], params["prepare"]["min_duration_s"],
                                  params["prepare"]["loudness_dbfs"])
        assert reason is None, f"{path}: {reason}"
        assert pcm.dtype == np.int16
        assert params["prepare"]["min_duration_s"] * rate <= len(pcm) <= sf.info(path).duration * rate + 1
        vector, image = extract(pack.to_float(pcm), rate, cfg)
        assert vector.shape == (len(feature_names(cfg)),) and np.isfinite(vector).all()
        assert image.shape == (cfg["spectrogram"]["n_mels"], spectrogram_frames(rate, cfg))
        assert np.isfinite(image).all() and 0.0 <= image.min() and image.max() <= 1.0
        assert vector.std() > 0 and image.std() > 0  # real speech, not silence
