import json
import subprocess
import sys

import pandas as pd
import pytest
import soundfile as sf

from ser.core.errors import DataError
from ser.data.manifest import (
    MANIFEST_COLUMNS,
    build_manifest,
    content_duplicates,
    file_accounting,
    map_label,
)

from .conftest import checkout_env, write_tone


def test_map_label(params):
    labels = params["labels"]
    assert map_label("calm", labels["map"], labels["classes"]) == "neutral"
    assert map_label("pleasant_surprise", labels["map"], labels["classes"]) == "surprised"
    assert map_label("sad", labels["map"], labels["classes"]) == "sad"
    assert map_label("breath", labels["map"], labels["classes"]) is None


def test_manifest_over_all_eight_corpora(raw_dir, params):
    manifest, excluded, stats = build_manifest(raw_dir, params, log=lambda _: None)
    assert set(manifest.corpus) == set(params["manifest"]["corpora"])
    assert list(manifest.columns) == ["path", "corpus", "speaker", "gender", "emotion", "corpus_label", "language"]
    assert set(manifest.emotion) <= set(params["labels"]["classes"])
    # JL 'anxious' and ASVP 'boredom' are outside the class set: dropped and counted, not lost silently
    assert stats["dropped_labels"] == {"jl_corpus": {"anxious": 1}, "asvp_esd": {"boredom": 1}}
    # the ASVP-ESD breath is a non-speech vocalisation: rejected by the parser, listed with its reason
    assert excluded.reason.tolist() == ["ASVP-ESD non-speech vocalisation (vocal channel 02)"]
    assert set(manifest.language) == {"en", "zh"}
    assert manifest[manifest.corpus == "esd"].language.eq("en").all()
    for corpus, part in stats["per_corpus"].items():
        assert file_accounting(part) == part["files"] == sum(1 for p in (raw_dir / corpus).rglob("*") if p.is_file())
    tess = manifest[manifest.path.str.endswith("OA_bite_neutral.wav")].iloc[0]
    assert (tess.speaker, tess.emotion) == ("tess_OAF", "neutral")
    calm = manifest[manifest.path.str.endswith("03-01-02-01-01-01-02.wav")].iloc[0]
    assert (calm.emotion, calm.corpus_label, calm.gender) == ("neutral", "calm", "female")


def test_bad_files_are_excluded_listed_and_counted(raw_dir, params):
    savee = raw_dir / "savee" / "ALL"
    (savee / "DC_h01.wav").write_bytes(b"")                            # empty
    (savee / "DC_h02.wav").write_text("this is not audio\n")           # not audio
    good = (savee / "DC_a01.wav").read_bytes()
    (savee / "DC_h03.wav").write_bytes(good[:30])                      # truncated header
    write_tone(savee / "DC_h04.flac", subtype="PCM_16")                # a good .flac
    write_tone(savee / "holiday.wav")                                  # unrecognisable name
    manifest, excluded, stats = build_manifest(raw_dir, params, log=lambda _: None)
    reasons = dict(zip(excluded.path.str.rsplit("/", n=1).str[-1], excluded.reason))
    assert reasons["DC_h01.wav"] == "empty file"
    assert reasons["DC_h02.wav"].startswith("not readable as audio")
    assert reasons["DC_h03.wav"].startswith("not readable as audio")
    assert reasons["holiday.wav"] == "file name does not follow the corpus naming convention"
    savee = stats["per_corpus"]["savee"]
    assert (savee["clips"], savee["speakers"], savee["excluded"], savee["dropped_labels"]) == (5, 4, 4, 0)
    assert savee["excluded_reasons"]["file name does not follow the corpus naming convention"] == 1
    assert file_accounting(savee) == savee["files"] == 9
    assert stats["excluded"] == 4 + 1 and stats["clips"] == len(manifest)  # + the ASVP-ESD non-speech fixture
    assert manifest.path.str.endswith("DC_h04.flac").any()


def test_absent_corpora_are_skipped_with_a_message(raw_dir, params):
    import shutil
    for corpus in ("crema_d", "esd", "jl_corpus", "asvp_esd"):
        shutil.rmtree(raw_dir / corpus)
    messages = []
    manifest, _, stats = build_manifest(raw_dir, params, log=messages.append)
    assert stats["corpora_skipped"] == ["crema_d", "jl_corpus", "esd", "asvp_esd"]
    assert any("crema_d: not in" in m and "skipped" in m for m in messages)
    assert set(manifest.corpus) == {"ravdess_speech", "ravdess_song", "tess", "savee"}


def test_no_corpora_at_all_is_an_error(tmp_path, params):
    with pytest.raises(DataError, match="none of the corpora in manifest.corpora is present"):
        build_manifest(tmp_path, params, log=lambda _: None)


def test_slice_is_seeded_and_stable(raw_dir, params):
    params["manifest"]["max_files_per_corpus"] = 2
    first, _, _ = build_manifest(raw_dir, params, log=lambda _: None)
    second, _, _ = build_manifest(raw_dir, params, log=lambda _: None)
    assert first.equals(second)
    assert first.groupby("corpus").size().max() == 2


def test_mp3_is_accepted(raw_dir, params):
    try:
        write_tone(raw_dir / "savee" / "ALL" / "JE_d05.mp3", subtype="MPEG_LAYER_III")
    except (sf.LibsndfileError, ValueError, TypeError):
        pytest.skip("this libsndfile cannot write MP3")
    manifest, excluded, _ = build_manifest(raw_dir, params, log=lambda _: None)
    assert manifest.path.str.endswith("JE_d05.mp3").any()


def test_manifest_stage_end_to_end_on_fixtures(raw_dir, project_copy):
    import shutil
    shutil.move(str(raw_dir.parent), str(project_copy / "data"))
    (project_copy / "data" / "raw" / "tess" / "TESS Toronto emotional speech set data" / "YAF_sad"
     / "YAF_bean_sad.wav").parent.mkdir(parents=True)
    (project_copy / "data" / "raw" / "tess" / "TESS Toronto emotional speech set data" / "YAF_sad"
     / "YAF_bean_sad.wav").write_bytes(b"RIFF....garbage")
    run = subprocess.run([sys.executable, "-m", "stages.manifest"], cwd=project_copy, capture_output=True, text=True,
                         env=checkout_env())   # this checkout's ser, never an installed copy
    assert run.returncode == 0, run.stderr
    manifest = pd.read_csv(project_copy / "data/manifest/manifest.csv")
    excluded = pd.read_csv(project_copy / "metrics/excluded_manifest.csv")
    stats = json.loads((project_copy / "metrics/manifest.json").read_text())
    # 27 fixture files: 2 labels outside the class set, 1 ASVP-ESD non-speech clip rejected
    assert len(manifest) == stats["clips"] == 24
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert excluded.path.str.endswith("YAF_bean_sad.wav").sum() == 1
    assert stats["excluded"] == 2


def test_manifest_stage_error_for_unrecognisable_corpus(project_copy):
    write_tone(project_copy / "data/raw/savee/track01.wav")
    run = subprocess.run([sys.executable, "-m", "stages.manifest"], cwd=project_copy, capture_output=True, text=True,
                         env=checkout_env())
    assert run.returncode == 2
    assert run.stderr.strip() == ("error: data/raw/savee: no file names follow the savee naming convention "
                                  "(1 audio file with extensions .flac, .mp3, .wav checked)")
    assert not (project_copy / "data/manifest/manifest.csv").exists()


def test_asvp_include_switches_reach_the_parser(tmp_path, params):
    noisy = "actor_27/03-01-04-01-03-27-02-02-02-77.wav"
    mixed = "actor_106/03-01-02-01-02-106-02-02-02-12-66.wav"
    for i, name in enumerate((noisy, mixed, "actor_1/03-01-05-02-11-01-02-03-01.wav")):
        write_tone(tmp_path / "asvp_esd" / name, freq=150 + 20 * i)
    params["manifest"]["corpora"] = ["asvp_esd"]
    manifest, excluded, stats = build_manifest(tmp_path, params, log=lambda _: None)
    assert len(manifest) == 1 and len(excluded) == 2
    params["manifest"].update(asvp_include_noisy=True, asvp_include_mixed=True)
    manifest, excluded, stats = build_manifest(tmp_path, params, log=lambda _: None)
    assert len(manifest) == 3 and excluded.empty
    assert sorted(manifest.language) == ["en", "en", "zh"]


@pytest.mark.parametrize("key", ["asvp_include_noisy", "asvp_include_mixed"])
def test_asvp_include_switches_are_validated(params, key):
    from ser.core.config import validate
    from ser.core.errors import ConfigError

    params["manifest"][key] = "yes"
    with pytest.raises(ConfigError, match=rf"manifest.{key} must be true or false \(got 'yes'\)"):
        validate(params)
    params["manifest"].pop(key)
    with pytest.raises(ConfigError, match=rf"manifest.{key} is missing"):
        validate(params)


# --- content duplicates: one recording under two names --------------------------------------

TESS_DIR = "TESS Toronto emotional speech set data"


def copy_samples(src, dst):
    """Write ``src``'s decoded samples to ``dst`` (the container follows dst's extension)."""
    pcm, rate = sf.read(src, dtype="int16")
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(dst, pcm, rate, subtype="PCM_16")
    return dst


def content_tree(tmp_path, pairs, singles=()):
    """A data/raw tree: each of ``pairs`` is two relative paths holding one tone's samples (the
    second a copy in its own container); ``singles`` each get a tone of their own."""
    raw = tmp_path / "data" / "raw"
    for i, (first, second) in enumerate(pairs):
        copy_samples(write_tone(raw / first, freq=150 + 20 * i), raw / second)
    for i, name in enumerate(singles):
        write_tone(raw / name, freq=610 + 20 * i)
    return raw


def test_content_duplicates_groups_by_digest():
    paths = ["e", "b", "a", "d", "c", "f"]
    emotions = ["sad", "sad", "sad", "angry", "happy", "angry"]
    digests = ["x", "x", "x", "y", "y", None]
    copies, conflicts = content_duplicates(paths, emotions, digests)
    assert copies == {0: 2, 1: 2}                       # same label: "a" (first in path order) stays
    assert conflicts == {3: [4], 4: [3]}                # labels disagree: both go, each naming the other
    assert content_duplicates(paths, emotions, [None] * 6) == ({}, {})


def test_same_audio_with_different_labels_is_excluded_everywhere(tmp_path, params):
    within = ("savee/ALL/DC_a01.wav", "savee/ALL/DC_sa01.flac")                      # angry / sad
    across = (f"tess/{TESS_DIR}/OAF_angry/OAF_back_angry.wav", "savee/ALL/JE_h01.flac")  # angry / happy
    singles = ("savee/ALL/KL_n01.wav", f"tess/{TESS_DIR}/OAF_neutral/OAF_bite_neutral.wav")
    raw = content_tree(tmp_path, [within, across], singles)
    params["manifest"]["corpora"] = ["savee", "tess"]
    manifest, excluded, stats = build_manifest(raw, params, log=lambda _: None)
    assert sorted(manifest.path) == sorted(str(raw / name) for name in singles)      # distinct files untouched
    reasons = dict(zip(excluded.path, excluded.reason))
    assert reasons[str(raw / within[0])] == (f"same audio as {raw / within[1]} (sad), labelled angry here: "
                                             "conflicting labels, every copy excluded")
    assert reasons[str(raw / across[1])] == (f"same audio as {raw / across[0]} (angry), labelled happy here: "
                                             "conflicting labels, every copy excluded")
    assert len(reasons) == 4 and set(excluded.stage) == {"manifest"}
    assert stats["content_duplicates"] == {"copies_skipped": 0, "conflicting_excluded": 4, "skipped": {}}
    assert (stats["per_corpus"]["savee"]["excluded"], stats["per_corpus"]["tess"]["excluded"]) == (3, 1)
    for part in stats["per_corpus"].values():
        assert part["content_duplicates"] == 0 and file_accounting(part) == part["files"]


def test_same_audio_with_the_same_label_keeps_the_first_path(tmp_path, params):
    pairs = [
        ("savee/ALL/DC_a01.wav", f"tess/{TESS_DIR}/OAF_angry/OAF_back_angry.flac"),   # angry in both
        ("savee/ALL/KL_n01.wav", "ravdess_speech/Actor_02/03-01-02-01-01-01-02.wav"),  # neutral; RAVDESS calm
    ]
    raw = content_tree(tmp_path, pairs, singles=("savee/ALL/JE_h01.wav",))
    params["manifest"]["corpora"] = ["ravdess_speech", "savee", "tess"]
    manifest, excluded, stats = build_manifest(raw, params, log=lambda _: None)
    assert excluded.empty
    assert sorted(manifest.path) == sorted(str(raw / n) for n in
                                           ("savee/ALL/DC_a01.wav", "ravdess_speech/Actor_02/03-01-02-01-01-01-02.wav",
                                            "savee/ALL/JE_h01.wav"))
    assert stats["content_duplicates"] == {
        "copies_skipped": 2, "conflicting_excluded": 0,
        "skipped": {str(raw / pairs[0][1]): str(raw / pairs[0][0]), str(raw / pairs[1][0]): str(raw / pairs[1][1])}}
    per_corpus = stats["per_corpus"]
    assert [per_corpus[c]["content_duplicates"] for c in ("ravdess_speech", "savee", "tess")] == [0, 1, 1]
    assert [per_corpus[c]["clips"] for c in ("ravdess_speech", "savee", "tess")] == [1, 2, 0]
    for part in per_corpus.values():
        assert file_accounting(part) == part["files"]


def test_manifest_stage_reports_content_duplicates(tmp_path, project_copy):
    raw = content_tree(project_copy, [("savee/ALL/DC_a01.wav", "savee/ALL/DC_a02.flac"),
                                      ("savee/ALL/JE_a01.wav", "savee/ALL/JE_sa01.wav")], singles=("savee/ALL/KL_n01.wav",))
    from .conftest import checkout_env

    assert raw == project_copy / "data" / "raw"
    run = subprocess.run([sys.executable, "-m", "stages.manifest"], cwd=project_copy, capture_output=True, text=True,
                         env=checkout_env())
    assert run.returncode == 0, run.stderr
    stats = json.loads((project_copy / "metrics/manifest.json").read_text())
    assert stats["content_duplicates"] == {"copies_skipped": 1, "conflicting_excluded": 2,
                                           "skipped": {"data/raw/savee/ALL/DC_a02.flac": "data/raw/savee/ALL/DC_a01.wav"}}
    assert stats["per_corpus"]["savee"]["content_duplicates"] == 1 and stats["clips"] == 2
    excluded = pd.read_csv(project_copy / "metrics/excluded_manifest.csv")
    assert sorted(excluded.path) == ["data/raw/savee/ALL/JE_a01.wav", "data/raw/savee/ALL/JE_sa01.wav"]
    assert ("1 same-audio copies skipped, 2 files excluded (2 of them same audio with conflicting labels; "
            in run.stdout)
