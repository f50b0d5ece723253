"""Bad input found by a hostile audit: each gets one line naming the culprit or a counted exclusion."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from ser.audio import decode
from ser.core.errors import DataError
from ser.data.corpora import classify_files, printable_path
from ser.data.manifest import build_manifest
from ser.data.preparation import missing_classes

from .conftest import checkout_env, write_tone


def test_a_non_utf8_name_is_excluded_and_counted(raw_dir, params):
    good = write_tone(raw_dir / "savee" / "ALL" / "DC_a09.wav")
    os.rename(os.fsencode(good), os.fsencode(raw_dir / "savee" / "ALL") + b"/DC_a0\xff.wav")
    manifest, excluded, stats = build_manifest(raw_dir, params, log=lambda _: None)
    row = excluded[excluded.reason.str.contains("not valid UTF-8")]
    assert len(row) == 1 and row.path.iloc[0].endswith("ALL/DC_a0\\xff.wav")
    assert not any("\udcff" in p or "\\xff" in p for p in manifest.path)  # the bad name is not a row
    assert stats["per_corpus"]["savee"]["excluded"] == 1
    excluded.to_csv(os.devnull)   # writable as text
    scan = classify_files([os.fsdecode(b"ALL/JE_\xfe.wav"), "ALL/JE_a01.wav"], "savee", [".wav"])
    assert [r for r, _ in scan.rows] and scan.rejected[0][1].startswith("file or folder name is not valid UTF-8")
    assert printable_path(os.fsdecode(b"x\xff")) == "x\\xff"


def test_decoder_errors_keep_libsndfile_s_reason(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    with pytest.raises(DataError) as err:
        decode.load(bad, 16000)
    message = str(err.value)
    assert message.startswith(f"{bad}: cannot decode audio (LibsndfileError: ")
    assert "NoBackendError" not in message and len(message.splitlines()) == 1


def test_classes_without_clips_are_found():
    frame = pd.DataFrame({"emotion": ["angry", "sad", "angry"]})
    assert missing_classes(frame, ["angry", "sad"]) == []
    assert missing_classes(frame, ["angry", "bored", "sad"]) == ["bored"]


def test_workers_die_with_a_killed_stage(tmp_path):
    script = ("import time, os\nfrom ser.core.parallel import pmap\n"
              "def slow(x):\n    time.sleep(60)\n    return x\n"
              "if __name__ == '__main__':\n    pmap(slow, range(8), desc='slow', chunksize=1)\n")
    (tmp_path / "slow.py").write_text(script)
    proc = subprocess.Popen([sys.executable, "slow.py"], cwd=tmp_path, env=checkout_env(SER_JOBS="2"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    children = []
    while time.time() < deadline and len(children) < 2:
        time.sleep(0.5)
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout
        children = [int(p) for p in out.split()]
    assert len(children) >= 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(p) for p in children):
        time.sleep(0.3)
    assert not any(_alive(p) for p in children)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
