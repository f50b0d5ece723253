"""``python -m ser serve``'s JSON API: the answers of ``predict --format json``, one-line errors
for bad input, limits, uploads that leave nothing behind, many clients at once, loopback only."""

import json
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
import soundfile as sf

from ser.app.serve import (
    ApiError,
    Options,
    allowed_hosts,
    is_loopback,
    parse_options,
    safe_name,
)

from .conftest import SPEECH_SAMPLES, checkout_env, running_server, write_speech


@pytest.fixture(scope="module")
def server(egemaps_model, tmp_path_factory):
    """One server for the module, its TMPDIR a folder of its own (checked empty after uploads)."""
    tmpdir = tmp_path_factory.mktemp("serve_tmp")
    log = tmp_path_factory.mktemp("serve_log") / "serve.err"
    with running_server(egemaps_model, "--max-upload-mb", "1", "--max-seconds", "20", "--upload-timeout", "2",
                        tmpdir=tmpdir, log=log) as url:
        yield url, tmpdir


def post(url, *paths, **fields):
    files = [("file", (p.name, p.read_bytes())) for p in paths]
    return requests.post(url + "api/predict", files=files, data=fields, timeout=120)


def cli_json(model, *argv):
    run = subprocess.run([sys.executable, "-m", "ser", "predict", "--model", str(model), "--format", "json", "-q",
                          *map(str, argv)], capture_output=True, text=True, env=checkout_env())
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


SAME = ("result", "emotion", "confidence", "speech_s", "speech_spans", "probabilities", "top_k", "warning")


def same(a, b) -> bool:
    """Equal JSON values, floats to 1e-9 (one code path: only float printing may differ)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-12)
    return a == b


@pytest.mark.slow
@pytest.mark.parametrize("options, argv", [({}, []), ({"top_k": "3", "segment": "1"}, ["--top-k", "3", "--segment", "1"])])
def test_the_api_answers_what_predict_prints(server, egemaps_model, tmp_path, options, argv):
    url, _ = server
    clip = write_speech(tmp_path / "voice.wav", index=1)
    response = post(url, clip, **options)
    assert response.status_code == 200, response.text
    rows, expected = response.json(), cli_json(egemaps_model, clip, *argv)
    assert len(rows) == len(expected) and (len(rows) > 1) == bool(options)
    for row, want in zip(rows, expected):
        assert row["file"] == "voice.wav" and row.get("segment") == want.get("segment")
        assert same({k: row[k] for k in SAME}, {k: want[k] for k in SAME}), (row, want)
        assert row["normalization"].startswith("speaker (all inputs: ")
    assert "total;dur=" in response.headers["Server-Timing"]


@pytest.mark.slow
def test_speaker_grouping_is_the_one_of_predict(server, egemaps_model, tmp_path):
    """speaker=all: the files of one request are one voice (``--speaker all``); speaker=file:
    each its own (``--speaker file``)."""
    url, _ = server
    clips = [write_speech(tmp_path / f"{i}.wav", index=i) for i in range(3)]
    for speaker in ("all", "file"):
        rows = post(url, *clips, speaker=speaker).json()
        expected = cli_json(egemaps_model, *clips, "--speaker", speaker)
        assert same([r["probabilities"] for r in rows], [r["probabilities"] for r in expected])
    assert not same(rows[0]["probabilities"], post(url, *clips, speaker="all").json()[0]["probabilities"])
    # each its own group, named by the file as the client named it, never the temporary path
    assert [r["normalization"].split(":")[0] for r in rows] == ["speaker (0.wav", "speaker (1.wav", "speaker (2.wav"]
    assert not any("ser-serve-" in r["normalization"] for r in rows)


def _truncated(tmp_path):
    full = write_speech(tmp_path / "full.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(full[:len(full) // 3])
    return tmp_path / "cut.wav"


@pytest.mark.slow
@pytest.mark.parametrize("make, error, message", [
    (lambda p: p / "empty.wav", "empty.wav: empty file", "This file is empty (empty.wav)."),
    (lambda p: p / "notes.txt", "notes.txt: cannot decode audio", "This file is not audio we can read (notes.txt)."),
    (_truncated, "cut.wav: truncated: header says",
     "This file is incomplete: it stops before its end (cut.wav). Please upload the whole file."),
    (lambda p: p / "long.wav", "long.wav: 30 s long; the limit is 20 s",
     "This recording is too long for this page (long.wav): the limit is 20 seconds."),
])
def test_a_bad_file_gets_an_error_row_and_the_others_their_answers(server, egemaps_model, tmp_path, make, error,
                                                                   message):
    """A file that cannot be answered gets a row of its own in a 200 answer: the technical
    ``error`` (no server path in it) and a plain ``message`` for the page; the good file beside
    it is answered as ``predict`` answers it."""
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not audio\n")
    sf.write(tmp_path / "long.wav", np.zeros(30 * 8000, np.int16), 8000)
    good = write_speech(tmp_path / "good.wav", index=1)
    response = post(server[0], make(tmp_path), good, speaker="file")
    assert response.status_code == 200, response.text
    bad, answered = response.json()
    assert bad["result"] == "error" and bad["file"] == make(tmp_path).name and bad["probabilities"] is None
    assert error in bad["error"] and "\n" not in bad["error"] and "Traceback" not in bad["error"]
    assert str(tmp_path) not in bad["error"] and "ser-serve-" not in bad["error"]   # names, never temporary paths
    assert bad["message"] == message
    [want] = cli_json(egemaps_model, good, "--speaker", "file")
    assert answered["file"] == "good.wav" and answered["result"] == want["result"]
    assert same(answered["probabilities"], want["probabilities"])


@pytest.mark.slow
def test_a_request_over_the_upload_limit_is_413(server, tmp_path):
    (tmp_path / "big.wav").write_bytes(np.random.default_rng(0).bytes(2 * 2**20))
    response = post(server[0], tmp_path / "big.wav")
    assert response.status_code == 413 and "the limit is 1 MB" in response.json()["error"]


@pytest.mark.slow
@pytest.mark.parametrize("fields, message", [
    ({"segment": "0.1"}, "segment: must be 'speech' or a number of seconds from 0.5 to 86400"),
    ({"segment": "1e308"}, "segment: must be 'speech' or a number of seconds from 0.5 to 86400 (got '1e308')"),
    ({"segment_over": "-1"}, "segment_over: must be a number of seconds from 0 to 86400 (got '-1')"),
    ({"top_k": "²"}, "top_k: must be a whole number >= 1 (got '²')"),
    ({"top_k": "0"}, "top_k: must be a whole number >= 1"),
    ({"speaker": "room"}, "speaker: must be one of all, file"),
    ({"colour": "red"}, "unknown field 'colour'"),
])
def test_bad_options_are_400(server, tmp_path, fields, message):
    response = post(server[0], write_speech(tmp_path / "v.wav"), **fields)
    assert response.status_code == 400 and message in response.json()["error"]


@pytest.mark.slow
def test_requests_without_audio_are_4xx(server):
    url, _ = server
    assert requests.post(url + "api/predict", timeout=30).status_code == 400
    raw = requests.post(url + "api/predict", data=b"RIFF", headers={"Content-Type": "audio/wav"}, timeout=30)
    assert raw.status_code == 415 and "multipart/form-data" in raw.json()["error"]
    empty_form = requests.post(url + "api/predict", files={"top_k": (None, "2")}, timeout=30)
    assert empty_form.status_code == 400 and "no audio" in empty_form.json()["error"]
    assert requests.get(url + "api/nothing", timeout=30).json() == {"error": "Not Found: GET /api/nothing"}


@pytest.mark.slow
def test_a_stalled_upload_is_answered_408(server):
    """A client that promises a body and stops sending gets an answer, not a hung request."""
    url, _ = server
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 100000\r\n"
                     "Content-Type: multipart/form-data; boundary=B\r\n\r\n--B\r\n".encode())
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 408") and '"error": "the upload did not arrive within 2 s"' in answer


@pytest.mark.slow
def test_twenty_requests_at_once_all_get_their_answer(server, tmp_path):
    url, _ = server
    clips = [write_speech(tmp_path / f"{i}.wav", index=i % len(SPEECH_SAMPLES)) for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda clip: post(url, clip), clips))
    assert [r.status_code for r in responses] == [200] * 20
    alone = {i: post(url, clips[i]).json() for i in range(len(SPEECH_SAMPLES))}
    for i, response in enumerate(responses):
        assert same(response.json()[0]["probabilities"], alone[i % len(SPEECH_SAMPLES)][0]["probabilities"])


@pytest.mark.slow
def test_uploads_leave_nothing_behind(server, tmp_path):
    url, tmpdir = server
    post(url, write_speech(tmp_path / "v.wav"))
    (tmp_path / "x.txt").write_text("x")
    post(url, tmp_path / "x.txt")
    assert list(tmpdir.iterdir()) == []


@pytest.mark.slow
def test_loopback_by_default_and_other_hosts_refused(server):
    url, _ = server
    assert url.startswith("http://127.0.0.1:")
    rebound = requests.get(url + "api/info", headers={"Host": "attacker.example"}, timeout=30)
    assert rebound.status_code == 403 and "refused" in rebound.json()["error"]
    info = requests.get(url + "api/info", timeout=30).json()
    assert info["classes"] and set(info["colors"]) == set(info["classes"]) and info["limits"]["max_bytes"] == 2**20
    assert requests.get(url, timeout=30).text.startswith("<!doctype html>")


def test_loopback_and_hosts():
    assert is_loopback("127.0.0.1") and is_loopback("127.8.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.org")
    assert allowed_hosts("127.0.0.1", 8000) == {"127.0.0.1:8000", "localhost:8000", "[::1]:8000"}
    assert allowed_hosts("0.0.0.0", 8000) is None


def test_a_taken_port_is_one_line(egemaps_model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "ser", "serve", "--model", str(egemaps_model), "--port", str(port)],
                             capture_output=True, text=True, env=checkout_env(), timeout=180)
    assert run.returncode == 2
    assert run.stderr.strip() == (f"error: cannot listen on 127.0.0.1:{port}: Address already in use "
                                  "(--port 0 picks a free one)")


def test_parse_options():
    assert parse_options({}) == Options(None, 1, "all")
    assert parse_options({"segment": "2", "top_k": "3", "speaker": "file"}) == Options(2.0, 3, "file")
    assert parse_options({"segment": ""}) == Options(None, 1, "all")
    for bad in ({"segment": "nan"}, {"segment": "inf"}, {"segment": "x"}, {"top_k": "1.5"}, {"top_k": "-1"}):
        with pytest.raises(ApiError) as err:
            parse_options(bad)
        assert err.value.status == 400


def test_upload_names_are_only_names():
    assert safe_name("../../etc/passwd", 0) == "passwd"
    assert safe_name("C:\\Users\\me\\clip.wav", 0) == "clip.wav"
    assert safe_name("", 2) == "upload-3" and safe_name("..", 0) == "upload-1"
    assert safe_name("a\x00b\nc.wav", 0) == "abc.wav"


def _cli_csv(model, cwd, *argv):
    run = subprocess.run([sys.executable, "-m", "ser", "predict", "--model", str(model), "--format", "csv", "-q",
                          *map(str, argv)], capture_output=True, env=checkout_env(), cwd=cwd)
    assert run.returncode in (0, 1), run.stderr
    return run.stdout.decode()   # bytes as written: csv ends its lines with \r\n


@pytest.mark.slow
@pytest.mark.parametrize("fields, argv", [({"speaker": "file"}, ["--speaker", "file"]),
                                          ({"speaker": "file", "segment": "1"}, ["--speaker", "file", "--segment", "1"])])
def test_csv_of_the_answers_is_predicts_csv(server, egemaps_model, tmp_path, fields, argv):
    """POST /api/csv with the rows /api/predict answered gives `predict --format csv`'s table of
    the same files, byte for byte; an error row has no line, as in predict's CSV."""
    url, _ = server
    clips = [write_speech(tmp_path / f"{i}.wav", index=i) for i in range(2)]
    (tmp_path / "notes.txt").write_text("not audio\n")
    rows = post(url, *clips, tmp_path / "notes.txt", **fields).json()
    assert [r["result"] == "error" for r in rows][-1]
    answer = requests.post(url + "api/csv", json=rows, timeout=30)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    assert answer.text == _cli_csv(egemaps_model, tmp_path, "0.wav", "1.wav", "notes.txt", *argv)


@pytest.mark.slow
@pytest.mark.parametrize("body, message", [
    ("not json", "the body is not JSON"),
    ('{"file": "a.wav"}', "the body must be a JSON list"),
    ('[{"file": "a.wav"}]', "row 0: no confidence, emotion"),
    ('[{"file": "a.wav", "result": "x", "emotion": null, "confidence": null, "speech_s": 1, "normalization": "",'
     ' "voice_clips": 0, "warning": null, "probabilities": {"angry": "high"}}]', "row 0: probabilities must give"),
])
def test_csv_of_rows_that_are_not_answers_is_400(server, body, message):
    answer = requests.post(server[0] + "api/csv", data=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 400 and message in answer.json()["error"]


@pytest.mark.slow
def test_speech_spans_mark_the_speech_the_detector_found(server, egemaps_model, tmp_path):
    """Each answer row carries the voiced stretches (seconds of the file) behind its speech_s:
    the page marks them on the waveform. A file padded with silence has them where the voice is."""
    y, sr = sf.read(write_speech(tmp_path / "v.wav", index=0), dtype="float32")
    sf.write(tmp_path / "padded.wav", np.concatenate([np.zeros(2 * sr, np.float32), y]), sr)
    [row] = post(server[0], tmp_path / "padded.wav").json()
    spans = row["speech_spans"]
    assert spans and all(2.0 <= a < b <= 2.0 + len(y) / sr + 1e-6 for a, b in spans)
    assert sum(b - a for a, b in spans) == pytest.approx(row["speech_s"], abs=0.011)
    assert same(spans, cli_json(egemaps_model, tmp_path / "padded.wav")[0]["speech_spans"])


def _project_with_corpora(root):
    """A project as `dvc repro manifest` and `prepare` leave it: two angry clips (one of them in
    the balanced training set) and a sad one."""
    clips = {"data/raw/c/a1.wav": ("angry", 0), "data/raw/c/a2.wav": ("angry", 1), "data/raw/c/s1.wav": ("sad", 2)}
    for path, (_, index) in clips.items():
        write_speech(root / path, index=index, seconds=1.5)
    (root / "data" / "manifest").mkdir(parents=True)
    (root / "data" / "manifest" / "manifest.csv").write_text(
        "path,corpus,speaker,emotion\n" + "".join(f"{p},savee,s{i},{e}\n" for p, (e, i) in clips.items()))
    (root / "data" / "prepared").mkdir(parents=True)
    (root / "data" / "prepared" / "clips.csv").write_text("path,emotion\ndata/raw/c/a1.wav,angry\n")
    return root


@pytest.mark.slow
def test_example_clips_come_from_the_corpora_present(egemaps_model, tmp_path):
    """GET /api/examples lists one clip per emotion found in the project's corpora, preferring
    clips the model did not train on; each is served and answered like an upload. None without
    corpora; an unknown example is a 404 in JSON."""
    project = _project_with_corpora(tmp_path / "project")
    with running_server(egemaps_model, "--examples", project) as url:
        listed = requests.get(url + "api/examples", timeout=30).json()
        assert [(e["name"], e["heard_in_training"]) for e in listed] == [("angry (SAVEE)", False), ("sad (SAVEE)", False)]
        assert all("path" not in e for e in listed) and [e["filename"] for e in listed] == ["a2.wav", "s1.wav"]
        clip = requests.get(url.rstrip("/") + listed[0]["url"], timeout=30)
        assert clip.status_code == 200 and clip.content == (project / "data/raw/c/a2.wav").read_bytes()
        missing = requests.get(url + "api/examples/7", timeout=30)
        assert missing.status_code == 404 and "no example 7" in missing.json()["error"]
    with running_server(egemaps_model, "--examples", "none") as url:
        assert requests.get(url + "api/examples", timeout=30).json() == []


def test_examples_must_be_a_folder(egemaps_model, tmp_path):
    run = subprocess.run([sys.executable, "-m", "ser", "serve", "--model", str(egemaps_model), "--examples",
                          str(tmp_path / "nowhere")], capture_output=True, text=True, env=checkout_env())
    assert run.returncode == 2 and run.stderr.strip().endswith(
        "argument --examples: " + str(tmp_path / "nowhere") + ": not a folder (a project holding data/raw, or 'none')")


@pytest.mark.slow
def test_each_file_of_a_request_is_segmented_on_its_own(server, egemaps_model, tmp_path):
    """segment=speech with segment_over=6: the 3-s clip is answered whole, exactly as predict
    answers it alone; the long recording beside it gets its speech segments and a time headline."""
    from .test_segments import _mix

    clip = write_speech(tmp_path / "short.wav", index=0)
    mix = _mix(tmp_path / "mix.wav")
    rows = post(server[0], clip, mix, speaker="file", segment="speech", segment_over="6").json()
    short = [r for r in rows if r["file"] == "short.wav"]
    long = [r for r in rows if r["file"] == "mix.wav"]
    assert len(short) == 1 and "segment" not in short[0] and "time_shares" not in short[0]
    [want] = cli_json(egemaps_model, clip, "--speaker", "file")
    assert same({k: short[0][k] for k in SAME}, {k: want[k] for k in SAME})
    assert long[0]["segment"] == "all" and "time_shares" in long[0] and len(long) > 5
    expected = cli_json(egemaps_model, mix, "--speaker", "file", "--segment", "speech")
    assert same([{k: r[k] for k in SAME} for r in long], [{k: r[k] for k in SAME} for r in expected])
