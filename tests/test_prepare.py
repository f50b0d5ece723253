"""The prepare stage excludes files cut short (``headers.header_mismatch``) and counts them."""

import json
import subprocess
import sys

import pandas as pd

from ser.data.manifest import MANIFEST_COLUMNS
from ser.data.preparation import clean_clip, prepare_clips, truncated_count

from .conftest import checkout_env, write_tone

SR = 16000
CUT_REASON = "truncated: header says 48000 frames, file holds 30000"


def cut_copy(path):
    """``path`` (3 s at 16 kHz, 16-bit mono WAV) cut after 30000 of its 48000 frames."""
    path.write_bytes(path.read_bytes()[:44 + 60000])
    return path


def clip_table(folder, classes, speakers=5) -> pd.DataFrame:
    """A manifest of one distinct 1 s tone per (speaker, emotion), plus one 3 s clip cut short."""
    rows = []
    for s in range(speakers):
        for e, emotion in enumerate(classes):
            path = write_tone(folder / f"s{s}_{emotion}.wav", seconds=1.0, freq=150 + 10 * e + 3 * s)
            rows.append([str(path), "savee", f"spk{s}", "male", emotion, emotion, "en"])
    cut = cut_copy(write_tone(folder / "cut.wav", seconds=3.0, freq=400))
    rows.append([str(cut), "savee", "spk0", "male", classes[0], classes[0], "en"])
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


def test_clean_clip_refuses_a_truncated_file(tmp_path, params):
    path = write_tone(tmp_path / "x.wav", seconds=3.0)
    level = params["prepare"]["loudness_dbfs"]
    pcm, reason = clean_clip(str(path), SR, 30, 0.3, level)
    assert reason is None and pcm is not None
    assert clean_clip(str(cut_copy(path)), SR, 30, 0.3, level) == (None, CUT_REASON)


def test_prepare_excludes_and_counts_truncated_clips(tmp_path, params):
    classes = params["labels"]["classes"]
    manifest = clip_table(tmp_path, classes)
    table, clips, excluded = prepare_clips(manifest, params)
    assert excluded.to_dict("records") == [{"path": str(tmp_path / "cut.wav"), "corpus": "savee", "stage": "prepare",
                                            "reason": CUT_REASON}]
    assert truncated_count(excluded) == 1 and len(table) == len(clips) == 5 * len(classes)
    assert not table.path.str.endswith("cut.wav").any()
    assert truncated_count(excluded.iloc[:0]) == 0


def test_prepare_stage_reports_truncated_files(tmp_path, params, project_copy):
    manifest = clip_table(tmp_path / "clips", params["labels"]["classes"])
    (project_copy / "data" / "manifest").mkdir(parents=True)
    manifest.to_csv(project_copy / "data" / "manifest" / "manifest.csv", index=False)
    run = subprocess.run([sys.executable, "-m", "stages.prepare"], cwd=project_copy, capture_output=True, text=True,
                         env=checkout_env(SER_JOBS="2"))
    assert run.returncode == 0, run.stderr
    stats = json.loads((project_copy / "metrics" / "prepare.json").read_text())
    assert (stats["truncated"], stats["excluded"], stats["excluded_reasons"]) == (1, 1, {CUT_REASON: 1})
    excluded = pd.read_csv(project_copy / "metrics" / "excluded_prepare.csv")
    assert excluded.reason.tolist() == [CUT_REASON]
    assert "1 excluded, 1 of them truncated files" in run.stdout
