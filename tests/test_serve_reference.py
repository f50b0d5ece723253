"""``POST /api/predict`` with ``reference`` files (other clips of the voice, any emotion): the
answers of ``predict --reference``, one-line errors naming a bad reference by its uploaded name,
and a cache that spares a page resending the same clips the cost of featurizing them again."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import requests
import soundfile as sf

from ser.app.serve import ApiError, ReferenceCache, Upload, check_copies

from .conftest import checkout_env, running_server, write_speech, write_tone

SR = 16000   # the bundle's rate: small uploads, no resampling on either side


@pytest.fixture(scope="module")
def server(egemaps_model, tmp_path_factory):
    """One server for the module, its TMPDIR a folder of its own (checked empty afterwards)."""
    tmpdir = tmp_path_factory.mktemp("serve_ref_tmp")
    log = tmp_path_factory.mktemp("serve_ref_log") / "serve.err"
    with running_server(egemaps_model, "--max-upload-mb", "2", "--max-seconds", "20", tmpdir=tmpdir, log=log) as url:
        yield url, tmpdir


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    """Real speech at 16 kHz: ``target`` and ``other`` to label, ``refs`` five clips of a voice
    (the five JL-Corpus recordings; the two targets are the same recordings at other levels,
    so their bytes differ)."""
    folder = tmp_path_factory.mktemp("ref_clips")
    return {"target": write_speech(folder / "target.wav", index=1, gain_db=-3, sample_rate=SR),
            "other": write_speech(folder / "other.wav", index=3, gain_db=-6, sample_rate=SR),
            "refs": [write_speech(folder / f"voice{i}.wav", index=i, sample_rate=SR) for i in range(5)]}


def post(url, targets, references=(), **fields):
    files = [("file", (p.name, p.read_bytes())) for p in targets]
    files += [("reference", (p.name, p.read_bytes())) for p in references]
    return requests.post(url + "api/predict", files=files, data=fields, timeout=120)


# In a subprocess: openSMILE and TensorFlow (which built the bundle here) do not share a process.
PREDICT = """
import json, sys
from ser.app.predict import Predictor
from ser.app.rows import json_rows
model, top_k, targets, refs = sys.argv[1], int(sys.argv[2]), sys.argv[3].split("|"), sys.argv[4].split("|")
predictor = Predictor(model)
results = predictor.analyse(targets, progress=False, reference=predictor.reference(refs, progress=False))
print(json.dumps(json_rows(results, predictor.classes, top_k, None, segmented=False)))
"""


def predict_with_reference(model, targets, refs, top_k=1) -> list[dict]:
    """The rows of ``Predictor.analyse(targets, reference=Predictor.reference(refs))``: what
    ``predict --reference`` prints, without its command line."""
    run = subprocess.run([sys.executable, "-c", PREDICT, str(model), str(top_k), "|".join(map(str, targets)),
                          "|".join(map(str, refs))], capture_output=True, text=True, env=checkout_env(), timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def timing(response) -> dict:
    """Server-Timing as ``{name: (ms, description)}``."""
    out = {}
    for entry in response.headers["Server-Timing"].split(","):
        name, *params = [p.strip() for p in entry.split(";")]
        values = dict(p.split("=", 1) for p in params)
        out[name] = (float(values["dur"]), values.get("desc", "").strip('"'))
    return out


@pytest.mark.slow
def test_references_normalize_every_file_as_predict_does(server, egemaps_model, clips):
    """Rows name the reference and count its clips; the probabilities are those of
    ``Predictor.analyse(..., reference=Predictor.reference(...))`` (``predict --reference``)."""
    url, _ = server
    refs = clips["refs"][:3]
    response = post(url, [clips["target"], clips["other"]], refs, top_k="2")
    assert response.status_code == 200, response.text
    rows = response.json()
    assert [r["file"] for r in rows] == ["target.wav", "other.wav"]
    for row in rows:
        assert row["normalization"].startswith("reference: 3 clips, "), row["normalization"]
        assert row["voice_clips"] == 3
    expected = predict_with_reference(egemaps_model, [clips["target"], clips["other"]], refs, top_k=2)
    for row, want in zip(rows, expected):
        assert row["normalization"] == want["normalization"]
        assert row["probabilities"] == pytest.approx(want["probabilities"], rel=1e-6, abs=1e-9)
        assert row["result"] == want["result"]


@pytest.mark.slow
def test_without_references_a_lone_clip_knows_no_other_clip(server, clips):
    rows = post(server[0], [clips["target"]]).json()
    assert rows[0]["voice_clips"] == 0 and not rows[0]["normalization"].startswith("reference")


@pytest.mark.slow
def test_with_references_a_file_does_not_depend_on_the_others(server, clips):
    url, _ = server
    alone = post(url, [clips["target"]], clips["refs"][:3]).json()
    together = post(url, [clips["other"], clips["target"]], clips["refs"][:3]).json()
    assert together[1]["file"] == "target.wav"
    assert together[1]["probabilities"] == alone[0]["probabilities"]


@pytest.mark.slow
def test_a_second_request_uses_the_cache_and_gets_the_same_rows(server, clips):
    """Five reference clips and a 3-s clip: the second time only the clip is featurized."""
    url, _ = server
    refs = [write_speech(clips["target"].parent / f"cache{i}.wav", index=i, gain_db=-1, sample_rate=SR)
            for i in range(5)]
    first = post(url, [clips["target"]], refs)
    second = post(url, [clips["target"]], refs)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    cold, warm = timing(first), timing(second)
    assert cold["reference"][1] == "0 of 5 cached" and warm["reference"][1] == "5 of 5 cached"
    assert warm["reference"][0] < cold["reference"][0] and warm["reference"][0] < 50
    print(f"\nServer-Timing for 1 clip + 5 references: cold {cold}, warm {warm}")


def _empty(p):
    (p / "empty.wav").write_bytes(b"")
    return p / "empty.wav"


def _text(p):
    (p / "notes.txt").write_text("not audio\n")
    return p / "notes.txt"


def _long(p):
    sf.write(p / "long.wav", np.zeros(30 * 8000, np.int16), 8000)
    return p / "long.wav"


@pytest.mark.slow
@pytest.mark.parametrize("make, status, message", [
    (_empty, 422, "reference empty.wav: empty file"),
    (_text, 422, "reference notes.txt: cannot decode audio"),
    (lambda p: write_tone(p / "hum.wav", seconds=2.0, sample_rate=SR), 422,
     "reference hum.wav: no speech in it"),
    (_long, 413, "reference long.wav: 30 s long; the limit is 20 s"),
])
def test_bad_references_get_a_4xx_naming_them(server, clips, tmp_path, make, status, message):
    url, tmpdir = server
    response = post(url, [clips["target"]], [clips["refs"][0], make(tmp_path)])
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error.startswith(message) and "\n" not in error and "--reference" not in error, error
    assert str(tmp_path) not in error and "ser-serve-" not in error
    assert list(tmpdir.iterdir()) == []


@pytest.mark.slow
def test_a_reference_that_is_a_file_to_label_is_refused(server, clips, tmp_path):
    url, _ = server
    copy = tmp_path / "again.wav"
    copy.write_bytes(clips["target"].read_bytes())
    response = post(url, [clips["target"]], [clips["refs"][0], copy])
    assert response.status_code == 422
    assert response.json()["error"].startswith("reference again.wav: the same audio as the file to label target.wav")
    twice = post(url, [clips["target"]], [clips["refs"][0], clips["refs"][0]])
    assert twice.status_code == 422 and "the same audio as reference voice0.wav" in twice.json()["error"]


@pytest.mark.slow
def test_references_limits_and_conflicts(server, clips, tmp_path):
    url, _ = server
    speaker = post(url, [clips["target"]], clips["refs"][:1], speaker="file")
    assert speaker.status_code == 400 and speaker.json()["error"].startswith("speaker and reference: choose one")
    many = [write_speech(tmp_path / f"r{i}.wav", index=i % 5, gain_db=-i, sample_rate=SR, seconds=0.3)
            for i in range(11)]
    too_many = post(url, [clips["target"]], many)
    assert too_many.status_code == 413 and "more than 10 reference files" in too_many.json()["error"]
    only = post(url, [], clips["refs"][:2])
    assert only.status_code == 400 and "reference files only describe the voice" in only.json()["error"]
    big = tmp_path / "big.wav"
    big.write_bytes(np.random.default_rng(0).bytes(3 * 2**20))
    over = post(url, [clips["target"]], [big])
    assert over.status_code == 413 and "the limit is 2 MB" in over.json()["error"]


@pytest.mark.slow
def test_info_gives_the_thresholds_per_way_and_the_reference_limit(server):
    info = requests.get(server[0] + "api/info", timeout=30).json()
    assert set(info["uncertain_below"]) == {"file", "reference", "group"}
    assert info["limits"]["max_references"] == 10 and info["sample_rate"] == SR


def test_the_cache_keeps_the_most_recently_used():
    cache = ReferenceCache(size=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1   # now the most recent: b goes first
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3


def test_copies_are_recognised_by_their_bytes(tmp_path):
    def upload(name, data, reference):
        return Upload(name, tmp_path / name, hashlib.sha256(data).hexdigest(), reference)

    targets = [upload("a.wav", b"a", False)]
    check_copies(targets, [upload("b.wav", b"b", True), upload("c.wav", b"c", True)])
    with pytest.raises(ApiError) as err:
        check_copies(targets, [upload("x.wav", b"a", True)])
    assert err.value.status == 422
    assert str(err.value).startswith("reference x.wav: the same audio as the file to label a.wav")
