"""Corpora described by a table (``ser/data/tables.py``): the manifest outcomes, one-line refusals of a
malformed table, ``evaluate --labels``, and real SAVEE expressed as a table.

The real-data tests pull SAVEE from the team remote (``../shared/dvc-remote``) into a scratch DVC
repo, as the end-to-end test does; without the remote they fail, they do not skip.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pandas as pd
import pytest
import yaml

from ser.app.cli import main
from ser.core.errors import DataError
from ser.data.manifest import build_manifest, file_accounting
from ser.data.tables import classify_listed, relative_path_problem, scan_table

from .conftest import ROOT, checkout_env, write_tone

REMOTE = (ROOT.parent / "shared" / "dvc-remote").resolve()
# SAVEE's emotion codes, as its documentation gives them (not read from ser.data.corpora: the table
# route must be checked against the parser, not built from it).
SAVEE_CODES = {"a": "anger", "d": "disgust", "f": "fear", "h": "happiness", "n": "neutral", "sa": "sadness",
               "su": "surprise"}
QUIET = {"log": lambda _: None}


def sh(cwd, *args):
    run = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=checkout_env())
    assert run.returncode == 0, f"{' '.join(map(str, args))} failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
    return run


def with_table(params, name, path=None):
    """``params`` with ``name`` described by a table and listed in ``manifest.corpora``."""
    params["manifest"]["tables"][name] = path
    if name not in params["manifest"]["corpora"]:
        params["manifest"]["corpora"].append(name)
    return params


# --- the manifest outcomes of a table-described corpus -----------------------------------------

def write_lab(raw: Path) -> Path:
    """A corpus of one's own with one file for every manifest outcome; returns its folder."""
    lab = raw / "my_lab"
    write_tone(lab / "s1" / "happy1.wav", freq=301)
    write_tone(lab / "s1" / "sad1.wav", freq=302)
    write_tone(lab / "s3" / "same.wav", freq=302)          # the audio of s1/sad1.wav again: a content duplicate
    write_tone(lab / "s2" / "calm1.flac", freq=303)
    write_tone(lab / "s2" / "bored1.wav", freq=304)       # boredom: no class, dropped and counted
    write_tone(lab / "s2" / "dup.wav", freq=305)
    (lab / "s2" / "dup.mp3").write_bytes(b"an unlisted copy of dup.wav in another format")
    (lab / "s2" / "empty.wav").write_bytes(b"")           # listed, but empty: excluded by the probe
    (lab / "s3" / "notes.txt").write_text("listed by mistake")
    write_tone(lab / "extra" / "unlisted.wav", freq=306)  # audio the table does not list
    (lab / "README.txt").write_text("a non-audio file")
    # Excel's "CSV UTF-8": a BOM, CRLF line ends; any column order and case, blank lines, an extra column
    (lab / "labels.csv").write_bytes("\ufeffSpeaker,Path,Emotion,Gender,Language,Transcript\r\n"
                                     "s1,s1/happy1.wav,Happiness,F,de,hallo\r\n"
                                     "s1,s1/sad1.wav,sad,,,\r\n"
                                     "\r\n"
                                     "s2,./s2/calm1.flac,calm,m,,\r\n"
                                     "s2,s2/bored1.wav,boredom,,,\r\n"
                                     "s2,s2/dup.wav,angry,,,\r\n"
                                     "s2,s2/empty.wav,angry,,,\r\n"
                                     "s3,s3/same.wav,sad,,,\r\n"
                                     "s3,s3/notes.txt,sad,,,\r\n".encode("utf-8"))
    return lab


def test_a_table_corpus_goes_through_every_manifest_outcome(raw_dir, params):
    write_lab(raw_dir)
    messages = []
    manifest, excluded, stats = build_manifest(raw_dir, with_table(params, "my_lab"), log=messages.append)
    part = stats["per_corpus"]["my_lab"]
    # 12 files: 4 rows, 1 format copy, 1 same-audio copy, 3 excluded, 1 dropped label, 2 non-audio
    assert (part["files"], part["clips"], part["duplicates"], part["content_duplicates"], part["excluded"],
            part["dropped_labels"], part["other_files"]) == (12, 4, 1, 1, 3, 1, 2)
    assert file_accounting(part) == part["files"]
    assert part["speakers"] == 2 and part["languages"] == {"": 3, "de": 1}
    assert stats["dropped_labels"]["my_lab"] == {"boredom": 1}
    assert stats["duplicates"]["my_lab"] == {"s2 (.mp3) -> s2": 1}
    lab = f"{raw_dir}/my_lab"
    assert stats["content_duplicates"]["skipped"][f"{lab}/s3/same.wav"] == f"{lab}/s1/sad1.wav"
    rows = manifest[manifest.corpus == "my_lab"].set_index("path")
    assert rows.loc[f"{lab}/s1/happy1.wav"].tolist() == ["my_lab", "my_lab_s1", "female", "happy", "happiness", "de"]
    assert rows.loc[f"{lab}/s2/calm1.flac"].tolist() == ["my_lab", "my_lab_s2", "male", "neutral", "calm", ""]
    assert sorted(rows.index) == [f"{lab}/s1/happy1.wav", f"{lab}/s1/sad1.wav", f"{lab}/s2/calm1.flac",
                                  f"{lab}/s2/dup.wav"]
    reasons = dict(zip(excluded.path, excluded.reason))
    assert reasons[f"{lab}/s2/empty.wav"] == "empty file"
    assert reasons[f"{lab}/s3/notes.txt"] == \
        "listed in labels.csv, but .txt is not an audio extension (.flac, .mp3, .wav)"
    assert reasons[f"{lab}/extra/unlisted.wav"] == "audio file not listed in labels.csv"
    assert set(excluded[excluded.corpus == "my_lab"].path) == {f"{lab}/s2/empty.wav", f"{lab}/s3/notes.txt",
                                                              f"{lab}/extra/unlisted.wav"}
    assert any(m.startswith("manifest: my_lab: 6 clips, 1 duplicate copies, 1 rejected, "
                            "1 audio files not listed in labels.csv, 1 dropped labels") for m in messages)
    # the built-in corpora beside it are read by their parsers as before
    assert stats["per_corpus"]["savee"]["clips"] == 4
    assert manifest[manifest.corpus == "savee"].speaker.str.startswith("savee_").all()


def test_the_table_path_comes_from_params_and_must_exist(raw_dir, params):
    lab = raw_dir / "my_lab"
    write_tone(lab / "a.wav", freq=311)
    (lab / "meta").mkdir()
    (lab / "meta" / "emotions.csv").write_text("path,emotion,speaker\na.wav,sad,x\n")
    manifest, _, stats = build_manifest(raw_dir, with_table(params, "my_lab", "meta/emotions.csv"), **QUIET)
    assert stats["per_corpus"]["my_lab"]["clips"] == 1 and stats["per_corpus"]["my_lab"]["other_files"] == 1
    params["manifest"]["tables"]["my_lab"] = "labels.csv"
    with pytest.raises(DataError) as err:
        build_manifest(raw_dir, params, **QUIET)
    assert str(err.value) == \
        f"{lab / 'labels.csv'}: not found (manifest.tables.my_lab says this table describes my_lab)"


def test_a_table_declared_for_a_built_in_corpus_replaces_its_parser(raw_dir, params):
    # A relabelled SAVEE: one clip relabelled, one left out, the rest as the names say.
    (raw_dir / "savee" / "labels.csv").write_text("path,emotion,speaker\nALL/DC_a01.wav,disgust,DC\n"
                                                  "ALL/JE_sa03.wav,sadness,JE\nALL/JK_su15.wav,surprise,JK\n")
    manifest, excluded, stats = build_manifest(raw_dir, with_table(params, "savee", "labels.csv"), **QUIET)
    savee = manifest[manifest.corpus == "savee"].set_index("path")
    assert savee.loc[f"{raw_dir}/savee/ALL/DC_a01.wav"].emotion == "disgust"
    assert set(savee.speaker) == {"savee_DC", "savee_JE", "savee_JK"}
    assert excluded[excluded.corpus == "savee"].reason.tolist() == ["audio file not listed in labels.csv"]
    assert file_accounting(stats["per_corpus"]["savee"]) == stats["per_corpus"]["savee"]["files"] == 5


def test_format_copies_in_a_table_corpus():
    files = [PurePosixPath(p) for p in ("a/x.mp3", "a/x.wav", "b/x.wav", "a/y.mp3", "a/y.flac")]
    clip = object()
    other = object()
    listed = {PurePosixPath("a/x.mp3"): (2, clip), PurePosixPath("a/x.wav"): (3, clip),
              PurePosixPath("a/y.mp3"): (4, clip)}
    scan, problems = classify_listed(files, listed, [".wav", ".mp3", ".flac"], "labels.csv")
    assert problems == []
    # two listed formats: the lossless one is the row; an unlisted FLAC beside a listed MP3 is its copy;
    # b/x.wav is another folder's file, not a copy
    assert scan.rows == [(PurePosixPath("a/x.wav"), clip), (PurePosixPath("a/y.mp3"), clip)]
    assert scan.duplicates == [(PurePosixPath("a/x.mp3"), PurePosixPath("a/x.wav")),
                               (PurePosixPath("a/y.flac"), PurePosixPath("a/y.mp3"))]
    assert scan.unrecognised == [PurePosixPath("b/x.wav")]
    assert scan.files == len(files)
    listed[PurePosixPath("a/x.mp3")] = (2, other)
    _, problems = classify_listed(files, listed, [".wav", ".mp3", ".flac"], "labels.csv")
    assert problems == [(2, "a/x.mp3 is a/x.wav (line 3) in another format, with another label")]


# --- a malformed table: one line naming the file, the line and the problem ---------------------

HEADER = "path,emotion,speaker\n"


@pytest.mark.parametrize("content, message", [
    ("path,emotion\na.wav,sad\n",
     "1: missing column speaker (the header has: path, emotion; needed: path,emotion,speaker[,gender,language])"),
    ("file,emotion\na.wav,sad\n", "1: missing columns path, speaker (the header has: file, emotion; needed: "
                                  "path,emotion,speaker[,gender,language])"),
    ("path,emotion,speaker,gendre\na.wav,sad,x,f\n", "1: column gendre is not known (did you mean gender?)"),
    ("path,emotion,speaker,emotion\n", "1: column emotion appears twice"),
    (HEADER + "a.wav,sad,x\nmissing.wav,sad,x\n", "3: path missing.wav does not exist in {folder}"),
    (HEADER + "A.WAV,sad,x\n",
     "2: path A.WAV does not exist in {folder} (did you mean a.wav? names are case-sensitive)"),
    (HEADER + "sub\\c.wav,sad,x\n", "2: path sub\\c.wav does not exist in {folder} (separate folders with /, not \\)"),
    (HEADER + "sub,sad,x\n", "2: path sub is a folder, not a file"),
    (HEADER + "../a.wav,sad,x\n", "2: path ../a.wav leaves the corpus folder (..)"),
    (HEADER + "sub/../../a.wav,sad,x\n", "2: path sub/../../a.wav leaves the corpus folder (..)"),
    (HEADER + "/data/a.wav,sad,x\n", "2: path /data/a.wav is absolute (paths are relative to the corpus folder)"),
    (HEADER + "C:\\data\\a.wav,sad,x\n",
     "2: path C:\\data\\a.wav is absolute (paths are relative to the corpus folder)"),
    (HEADER + ",sad,x\n", "2: empty path"),
    (HEADER + "a.wav, ,x\n", "2: empty emotion"),
    (HEADER + "a.wav,sad,\n", "2: empty speaker"),
    (HEADER + "a.wav,sad,x\nb.wav,sad,x\n./a.wav,angry,y\n", "4: path a.wav is listed twice (also on line 2)"),
    (HEADER + "a.wav,sad\n", "2: 2 fields, the header has 3"),
    (HEADER + "a.wav,sad,x,extra\n", "2: 4 fields, the header has 3"),
    ("path,emotion,speaker,gender\na.wav,sad,x,child\n", "2: gender must be male, female or empty (got 'child')"),
    ("path,emotion,speaker,language\na.wav,sad,x,English\n",
     "2: language must be an ISO 639-1 code such as en, or empty (got 'English')"),
    (HEADER.encode() + b"a.wav,col\xe8re,x\n", "2: not UTF-8 text (byte 0xe8); save the table as CSV UTF-8"),
    (b"\xef\xbb\xbf" + HEADER.encode() + b"a.wav,sad,x\nb.wav,sad,\xe9\n",
     "3: not UTF-8 text (byte 0xe9); save the table as CSV UTF-8"),
    (b"PK\x03\x04\x14\x00\x06\x00\x08\x00", "1: binary data, not CSV text (a spreadsheet? save it as CSV UTF-8)"),
    ("path;emotion;speaker\na.wav;sad;x\n",
     "1: the first line has no commas: not a comma-separated table (it looks separated by ';')"),
    ('{"path": "a.wav"}\n', "1: the first line has no commas: not a comma-separated table "
                            "(expected the header path,emotion,speaker[,gender,language])"),
    (HEADER + 'a.wav,"sad\n', "2: not valid CSV (unexpected end of data)"),
    (HEADER + 'a.wav,"sad"x,y\n', "2: not valid CSV (',' expected after '\"')"),
    ("", "1: empty: the first line must be the header path,emotion,speaker[,gender,language]"),
    # every problem is found in one run; the first is named, the others counted
    (HEADER + "a.wav,,x\nb.wav,sad,x\n/abs.wav,sad,x\nnope.wav,sad,x\n",
     "2: empty emotion (and 2 more problems in this table)"),
])
def test_a_malformed_table_is_refused_in_one_line(tmp_path, content, message):
    folder = tmp_path / "my_lab"
    for name in ("a.wav", "b.wav", "sub/c.wav"):
        write_tone(folder / name)
    table = folder / "labels.csv"
    table.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError) as err:
        scan_table(folder, table, "my_lab", [".wav"])
    assert str(err.value) == f"{table}:{message.format(folder=folder)}"


def test_a_table_with_no_rows_is_refused(tmp_path):
    write_tone(tmp_path / "a.wav")
    (tmp_path / "labels.csv").write_text(HEADER + "\n")
    with pytest.raises(DataError, match=r"labels.csv: no clips listed \(the header and nothing else\)$"):
        scan_table(tmp_path, tmp_path / "labels.csv", "x", [".wav"])


def test_relative_path_problem():
    assert relative_path_problem("a/b.wav") is None and relative_path_problem("./b.wav") is None
    assert relative_path_problem("") == "is empty"
    for text in ("/a.wav", "C:\\a.wav", "\\\\server\\a.wav"):
        assert relative_path_problem(text).startswith("is absolute"), text
    for text in ("..", "../a.wav", "a/../../b.wav", "..\\a.wav"):
        assert relative_path_problem(text) == "leaves the corpus folder (..)", text


def test_a_malformed_table_stops_the_manifest_stage_before_anything_is_written(raw_dir, project_copy):
    shutil.move(str(raw_dir.parent), str(project_copy / "data"))
    lab = write_lab(project_copy / "data" / "raw")
    with open(lab / "labels.csv", "a", encoding="utf-8") as f:
        f.write("s3,s3/gone.wav,sad,,,\r\n")
    params = yaml.safe_load((project_copy / "params.yaml").read_text())
    (project_copy / "params.yaml").write_text(yaml.safe_dump(with_table(params, "my_lab"), sort_keys=False))
    run = subprocess.run([sys.executable, "-m", "stages.manifest"], cwd=project_copy, capture_output=True, text=True,
                         env=checkout_env())
    assert run.returncode == 2
    assert run.stderr == "error: data/raw/my_lab/labels.csv:11: path s3/gone.wav does not exist in data/raw/my_lab\n"
    assert not (project_copy / "data" / "manifest").exists() and not (project_copy / "metrics").exists()
    # fixed, the stage runs and reports the corpus
    (lab / "s3" / "gone.wav").write_bytes((lab / "s1" / "happy1.wav").read_bytes()[:44])   # a header, no frames
    run = subprocess.run([sys.executable, "-m", "stages.manifest"], cwd=project_copy, capture_output=True, text=True,
                         env=checkout_env())
    assert run.returncode == 0, run.stderr
    stats = json.loads((project_copy / "metrics" / "manifest.json").read_text())
    assert stats["per_corpus"]["my_lab"]["clips"] == 4 and stats["per_corpus"]["my_lab"]["files"] == 13
    assert file_accounting(stats["per_corpus"]["my_lab"]) == 13


# --- python -m ser evaluate FOLDER --labels TABLE ---------------------------------------------

def test_evaluate_needs_one_of_corpus_and_labels(tmp_path):
    for args, expected in ((["evaluate", str(tmp_path)], "one of the arguments --corpus --labels is required"),
                           (["evaluate", str(tmp_path), "--corpus", "savee", "--labels", "t.csv"],
                            "argument --labels: not allowed with argument --corpus")):
        run = subprocess.run([sys.executable, "-m", "ser", *args], capture_output=True, text=True, env=checkout_env())
        assert run.returncode == 2 and run.stderr.startswith(f"error: {expected}") and run.stderr.count("\n") == 1


def test_evaluate_refuses_a_missing_or_malformed_table_in_one_line(tiny_model, tmp_path, capsys):
    folder = tmp_path / "my_lab"
    write_tone(folder / "a.wav")
    (folder / "labels.csv").write_text(HEADER + "a.wav,sad,\n")
    out = tmp_path / "m.json"
    args = ["evaluate", str(folder), "--model", str(tiny_model), "--json", str(out), "-q", "--labels"]
    assert main([*args, str(folder / "labels.csv")]) == 2
    assert capsys.readouterr().err == f"error: {folder / 'labels.csv'}:2: empty speaker\n"
    assert main([*args, "labels.csv"]) == 2   # relative to the current folder, not to FOLDER
    assert capsys.readouterr().err == \
        f"error: --labels: labels.csv: no such file (did you mean {folder / 'labels.csv'}?)\n"
    assert main([*args, str(folder)]) == 2
    assert capsys.readouterr().err == f"error: --labels: {folder}: is a folder, not a table\n"
    assert not out.exists()


# --- real SAVEE as a table ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def savee(tmp_path_factory) -> Path:
    """Real SAVEE (``data/raw/savee``, 360 FLAC clips) pulled from the team remote into a scratch repo."""
    if not REMOTE.is_dir():
        pytest.fail(f"{REMOTE} not found: the SAVEE table tests need the team's DVC remote beside the project")
    repo = tmp_path_factory.mktemp("savee") / "repo"
    (repo / "data" / "raw").mkdir(parents=True)
    shutil.copy(ROOT / "data" / "raw" / "savee.dvc", repo / "data" / "raw" / "savee.dvc")
    sh(repo, "git", "init", "-q")
    sh(repo, "dvc", "init", "-q")
    sh(repo, "dvc", "config", "core.analytics", "false")
    sh(repo, "dvc", "remote", "add", "-d", "team", str(REMOTE))
    sh(repo, "dvc", "pull", "-q", "data/raw/savee.dvc")
    folder = repo / "data" / "raw" / "savee"
    assert len(list(folder.rglob("*.flac"))) == 360
    return folder


def savee_rows(folder: Path) -> list[str]:
    """SAVEE's table, written from its names (``ALL/<SPK>_<code><nn>``): path,emotion,speaker,gender,language."""
    rows = []
    for clip in sorted(folder.rglob("*.flac")):
        speaker, rest = clip.stem.split("_")
        rows.append(f"{clip.relative_to(folder).as_posix()},{SAVEE_CODES[rest.rstrip('0123456789')]},{speaker},male,en")
    return rows


@pytest.mark.slow
def test_savee_as_a_table_gives_the_parsers_manifest(savee, tmp_path, params):
    raw = tmp_path / "raw"
    shutil.copytree(savee, raw / "savee")
    rows = savee_rows(raw / "savee")
    (raw / "savee" / "labels.csv").write_text("path,emotion,speaker,gender,language\n" + "\n".join(rows) + "\n")
    params["manifest"]["corpora"] = ["savee"]
    by_parser = build_manifest(raw, params, **QUIET)
    by_table = build_manifest(raw, with_table(params, "savee", "labels.csv"), **QUIET)
    assert len(by_parser[0]) == 360 and by_parser[0].speaker.nunique() == 3
    pd.testing.assert_frame_equal(by_table[0], by_parser[0])   # the same rows, labels, speakers, order
    pd.testing.assert_frame_equal(by_table[1], by_parser[1])   # the same exclusions (none)
    assert by_table[2] == by_parser[2]                         # the same counts (labels.csv: 1 other file)

    # One speaker's rows left out of the table: the same clips minus theirs, the rest counted as not listed.
    (raw / "savee" / "labels.csv").write_text("path,emotion,speaker,gender,language\n"
                                              + "\n".join(r for r in rows if ",DC," not in r) + "\n")
    manifest, excluded, stats = build_manifest(raw, params, **QUIET)
    pd.testing.assert_frame_equal(manifest, by_parser[0][by_parser[0].speaker != "savee_DC"].reset_index(drop=True))
    assert len(excluded) == 120 and set(excluded.reason) == {"audio file not listed in labels.csv"}
    part = stats["per_corpus"]["savee"]
    assert (part["clips"], part["excluded"], part["files"]) == (240, 120, 361) and file_accounting(part) == 361


@pytest.mark.slow
def test_evaluate_by_table_scores_like_by_corpus(savee, tiny_model, tmp_path, capsys):
    """``--labels`` reads the folder with the manifest's table reader and scores and prints with the
    ``--corpus`` code: on the same clips, the same numbers."""
    folder = tmp_path / "savee"
    clips = sorted(savee.rglob("*.flac"))[::45]        # 8 real clips, 3 speakers, several emotions
    (folder / "ALL").mkdir(parents=True)
    for clip in clips:
        shutil.copy(clip, folder / "ALL" / clip.name)
    table = tmp_path / "savee_labels.csv"
    table.write_text("path,emotion,speaker\n" + "\n".join(",".join(r.split(",")[:3]) for r in savee_rows(folder)))
    common = [str(folder), "--model", str(tiny_model), "-q"]
    assert main(["evaluate", *common, "--corpus", "savee", "--json", str(tmp_path / "corpus.json")]) == 0
    by_corpus = capsys.readouterr().out.splitlines()
    assert main(["evaluate", *common, "--labels", str(table), "--json", str(tmp_path / "table.json")]) == 0
    by_table = capsys.readouterr().out.splitlines()
    assert by_corpus[0] == f"savee at {folder}: 8 clips scored, 0 failed, 0 without speech (not scored), " \
                           "0 with labels outside the model's classes, 0 unrecognised names"
    assert by_table[0] == f"savee at {folder}: 8 clips scored, 0 failed, 0 without speech (not scored), " \
                          "0 with labels outside the model's classes, 0 audio files not listed in savee_labels.csv"
    assert by_corpus[1] == "normalization: speaker (3 speakers from the file names)"
    assert by_table[1] == "normalization: speaker (3 speakers from the speaker column of savee_labels.csv)"
    assert by_table[2:] == by_corpus[2:] and by_corpus[2].startswith("UA ")
    corpus_json, table_json = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("corpus", "table"))
    assert table_json.pop("labels") == str(table) and corpus_json.pop("labels") is None
    assert table_json == corpus_json


@pytest.mark.slow
def test_walkthrough_dvc_add_push_repro_pull(savee, tmp_path):
    """docs/corpora.md "Your own corpus": audio and labels.csv under data/raw/<name>, dvc add, dvc push,
    params, dvc repro; a teammate's dvc pull brings back audio and table."""
    repo = tmp_path / "repo"
    for name in ("stages", "ser"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, repo / name)
    sh(repo, "git", "init", "-q")
    sh(repo, "dvc", "init", "-q")
    sh(repo, "dvc", "config", "core.analytics", "false")
    # 12 real SAVEE clips in a lab's own layout: per-speaker folders, names no parser knows
    lab = repo / "data" / "raw" / "my_lab"
    rows = []
    for k, clip in enumerate(sorted(savee.rglob("*.flac"))[::30]):
        speaker, rest = clip.stem.split("_")
        rel = f"{speaker.lower()}/take_{k:03d}.flac"
        (lab / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, lab / rel)
        rows.append(f"{rel},{SAVEE_CODES[rest.rstrip('0123456789')]},{speaker}")
    table = "path,emotion,speaker\n" + "\n".join(rows) + "\n"
    (lab / "labels.csv").write_text(table)
    sh(repo, "dvc", "add", "-q", "data/raw/my_lab")
    assert (repo / "data" / "raw" / "my_lab.dvc").is_file() and "/my_lab" in (repo / "data/raw/.gitignore").read_text()
    sh(repo, "dvc", "remote", "add", "-d", "mine", str(tmp_path / "remote"))
    sh(repo, "dvc", "push", "-q")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["manifest"].update(corpora=["my_lab"], tables={"my_lab": "labels.csv"})
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(repo, "dvc", "repro", "manifest")
    stats = json.loads((repo / "metrics" / "manifest.json").read_text())
    part = stats["per_corpus"]["my_lab"]
    assert (part["clips"], part["speakers"], part["files"], part["other_files"]) == (12, 3, 13, 1)
    manifest = pd.read_csv(repo / "data" / "manifest" / "manifest.csv", keep_default_na=False)
    assert set(manifest.speaker) == {"my_lab_DC", "my_lab_JE", "my_lab_JK"}
    assert set(manifest.emotion) <= set(params["labels"]["classes"]) and len(set(manifest.emotion)) > 3
    # a teammate without the files: dvc pull brings back the audio, the table and the manifest,
    # and the manifest stage is up to date (no rerun)
    sh(repo, "dvc", "push", "-q")
    shutil.rmtree(lab)
    shutil.rmtree(repo / ".dvc" / "cache")
    (repo / "data" / "manifest" / "manifest.csv").unlink()
    sh(repo, "dvc", "pull", "-q", "data/raw/my_lab.dvc", "manifest")
    assert (lab / "labels.csv").read_text() == table and len(list(lab.rglob("*.flac"))) == 12
    assert sh(repo, "dvc", "status", "manifest").stdout.strip() == "Data and pipelines are up to date."
