"""The parsers and the manifest against the real release names in ``../shared/corpus-names``.

CREMA-D's list is its complete release (AudioWAV + AudioMP3); ESD, JL-Corpus and ASVP-ESD are
real names sampled from public copies (each folder's SOURCE.md says how). Every name must be
handled deliberately: parsed, rejected with a documented reason, a duplicate copy, or a non-audio
file. The expected counts below were derived from the names and SOURCE.md, not from the parsers.
"""

import shutil
import zlib
from collections import Counter
from pathlib import Path, PurePath

import numpy as np
import pytest
import soundfile as sf

from ser.data.corpora import ClipLabel, classify_files, crema_genders, parse_asvp_esd
from ser.data.manifest import build_manifest, file_accounting, map_label

ROOT = Path(__file__).resolve().parents[1]
NAMES = ROOT.parent / "shared" / "corpus-names"
EXTENSIONS = [".wav", ".flac", ".mp3"]
JL = "Raw JL corpus (unchecked and unannotated)/"

pytestmark = pytest.mark.skipif(not NAMES.is_dir(), reason=f"{NAMES} is absent (real release names live in ../shared)")

ASVP_REASONS = {
    "ASVP-ESD non-speech vocalisation (vocal channel 02)": 318,
    "ASVP-ESD emotion 09 (excited) is not a speech emotion of the unified set": 19,
    "ASVP-ESD emotion 10 (pleasure) is not a speech emotion of the unified set": 2,
    "ASVP-ESD emotion 12 (disappointment) is not a speech emotion of the unified set": 9,
    "ASVP-ESD noisy recording (-77); manifest.asvp_include_noisy is false": 3,
    "ASVP-ESD mixed voices (-66); manifest.asvp_include_mixed is false": 5,
}


def real_names(corpus: str) -> list[str]:
    return (NAMES / corpus / "names.txt").read_text().splitlines()


def classify(corpus: str, names=None, **options):
    """Classify names; no name may be left unexplained, and every name is in exactly one category."""
    names = real_names(corpus) if names is None else names
    scan = classify_files(names, corpus, EXTENSIONS, options)
    assert scan.unrecognised == [], f"{corpus}: unexplained names {scan.unrecognised[:5]}"
    assert scan.files == len(names)
    return scan


def tally(scan, attr: str) -> dict:
    return dict(Counter(getattr(label, attr) for _, label in scan.rows))


def unified(scan, params) -> tuple[dict, dict]:
    """(kept unified labels, dropped corpus labels) under the project's labels section."""
    labels = params["labels"]
    mapped = [(clip.emotion, map_label(clip.emotion, labels["map"], labels["classes"])) for _, clip in scan.rows]
    return (dict(Counter(u for _, u in mapped if u is not None)),
            dict(Counter(word for word, u in mapped if u is None)))


# --- every parser over every real name ---------------------------------------------------------

def test_crema_d_every_name_of_the_release(params):
    genders = crema_genders(NAMES / "crema_d")
    assert Counter(genders.values()) == {"male": 48, "female": 43}
    scan = classify("crema_d", genders=genders)
    # 7,442 clips, each as AudioWAV/x.wav and AudioMP3/x.mp3: the WAV is kept, the MP3 counted
    assert (len(scan.rows), len(scan.duplicates), len(scan.rejected), scan.other_files) == (7442, 7442, 0, 0)
    assert {rel.parts[0] for rel, _ in scan.rows} == {"AudioWAV"}
    assert all(skipped.parts[0] == "AudioMP3" and kept.parts[0] == "AudioWAV" and skipped.stem == kept.stem
               for skipped, kept in scan.duplicates)
    assert tally(scan, "emotion") == {"anger": 1271, "disgust": 1271, "fear": 1271, "happy": 1271,
                                      "neutral": 1087, "sad": 1271}
    assert len(tally(scan, "speaker")) == 91
    assert tally(scan, "gender") == {"male": 3930, "female": 3512}  # every actor is in VideoDemographics.csv
    assert tally(scan, "language") == {"en": 7442}
    assert unified(scan, params) == ({"angry": 1271, "disgust": 1271, "fearful": 1271, "happy": 1271,
                                      "neutral": 1087, "sad": 1271}, {})


def test_esd_every_sampled_name(params):
    scan = classify("esd")
    # 2,085 wavs; 14 transcripts SSSS/SSSS.txt and 3 .DS_Store are not audio
    assert (len(scan.rows), len(scan.duplicates), len(scan.rejected), scan.other_files) == (2085, 0, 0, 17)
    # 100 listed per emotion folder of 0001/0010/0011/0020, 1 probed per (speaker, emotion) of the
    # 16 others, and 5 confirmed range ends (one per emotion)
    assert tally(scan, "emotion") == dict.fromkeys(["angry", "happy", "neutral", "sad", "surprise"], 417)
    speakers = tally(scan, "speaker")
    assert (speakers.pop("esd_0001"), speakers.pop("esd_0010"), speakers.pop("esd_0011"), speakers.pop("esd_0020")) \
        == (501, 501, 502, 501)
    assert speakers == {f"esd_{n:04d}": 5 for n in range(2, 20) if n not in (10, 11)}
    assert tally(scan, "gender") == {"female": 546, "male": 1539}
    assert tally(scan, "language") == {"zh": 1042, "en": 1043}
    by_speaker = {clip.speaker: (clip.gender, clip.language) for _, clip in scan.rows}
    assert Counter(g for g, _ in by_speaker.values()) == {"female": 10, "male": 10}
    assert by_speaker["esd_0012"] == ("male", "en") and by_speaker["esd_0019"] == ("female", "en")  # the ReadMe's
    assert {lang for s, (_, lang) in by_speaker.items() if int(s[-4:]) <= 10} == {"zh"}
    assert unified(scan, params) == (dict.fromkeys(["angry", "happy", "neutral", "sad", "surprised"], 417), {})


def _esd_split_layout(name: str) -> str:
    """``SSSS/Emotion/x.wav`` -> ``SSSS/Emotion/<train|evaluation|test>/x.wav`` (the official download)."""
    rel = PurePath(name)
    if rel.suffix != ".wav":
        return name
    offset = (int(rel.stem[-6:]) - 1) % 350
    split = "evaluation" if offset < 20 else "test" if offset < 50 else "train"
    return str(rel.parent / split / rel.name)


def test_esd_split_and_folderless_layouts_give_the_same_labels():
    names = real_names("esd")
    flat = {rel.stem: label for rel, label in classify("esd", names).rows}
    split = {rel.stem: label for rel, label in classify("esd", [_esd_split_layout(n) for n in names]).rows}
    no_emotion_folder = {rel.stem: label for rel, label in classify(
        "esd", [str(PurePath(n).parts[0] + "/" + PurePath(n).name) for n in names if "/" in n]).rows}
    assert flat == split == no_emotion_folder


def test_jl_corpus_every_sampled_name(params):
    scan = classify("jl_corpus")
    # 174 wav + 40 mp3 name 190 recordings: 24 further copies (perception-test folders, cleaned/ mp3s);
    # 37 .txt, 2 .csv and 3 .xlsx are not audio
    assert (len(scan.rows), len(scan.duplicates), len(scan.rejected), scan.other_files) == (190, 24, 0, 42)
    assert len({rel.stem for rel, _ in scan.rows}) == 190
    kept = {rel.stem: rel for rel, _ in scan.rows}
    for skipped, chosen in scan.duplicates:
        assert kept[skipped.stem] == chosen and chosen != skipped
        assert not (chosen.suffix == ".mp3" and skipped.suffix == ".wav")              # lossless first
        assert not (skipped.parts[1] == "JL(wav+txt)" and chosen.parts[1] != "JL(wav+txt)")  # main folder first
    # 16 recordings appear in this sample only as cleaned/ MP3s: kept as MP3
    assert sum(rel.suffix == ".mp3" for rel, _ in scan.rows) == 16
    assert tally(scan, "emotion") == {
        "angry": 65, "excited": 9, "happy": 10, "neutral": 9, "sad": 9,                       # primary
        "anxious": 50, "apologetic": 9, "assertive": 10, "concerned": 9, "encouraging": 10,  # secondary
    }
    assert tally(scan, "speaker") == {"jl_female1": 118, "jl_female2": 23, "jl_male1": 21, "jl_male2": 28}
    assert tally(scan, "gender") == {"female": 141, "male": 49}
    assert tally(scan, "language") == {"en": 190}
    # with the project's labels: excited and the five secondary emotions are dropped (and counted)
    assert unified(scan, params) == ({"angry": 65, "happy": 10, "neutral": 9, "sad": 9},
                                     {"excited": 9, "anxious": 50, "apologetic": 9, "assertive": 10,
                                      "concerned": 9, "encouraging": 10})


def test_asvp_esd_every_sampled_name(params):
    names = real_names("asvp_esd")
    assert Counter(len(PurePath(n).stem.split("-")) for n in names) == {9: 150, 10: 396, 11: 107}
    scan = classify("asvp_esd")
    # kept: speech (channel 01), emotions 01-08, not noisy (-77) and not mixed voices (-66)
    assert (len(scan.rows), len(scan.duplicates), scan.other_files) == (297, 0, 0)
    assert dict(Counter(reason for _, reason in scan.rejected)) == ASVP_REASONS
    # the `actor_` folder (no number) holds only non-speech breaths of many actors
    assert {reason for rel, reason in scan.rejected if rel.parts[0] == "actor_"} == {
        "ASVP-ESD non-speech vocalisation (vocal channel 02)"}
    assert sum(rel.parts[0] == "actor_" for rel, _ in scan.rejected) == 100
    assert tally(scan, "emotion") == {"boredom": 3, "neutral": 115, "happy": 29, "sad": 16, "angry": 92,
                                      "fearful": 13, "surprised": 29}
    assert tally(scan, "speaker") == {"asvp_001": 73, "asvp_002": 64, "asvp_027": 8, "asvp_054": 100,
                                      "asvp_106": 16, "asvp_128": 36}
    assert tally(scan, "gender") == {"female": 81, "male": 216}  # odd actors (1, 27) female, even male
    # language field: 01 Chinese, 02 English, 04 French; 00, 03, 05, 06 and the sub-code 14 unknown
    assert tally(scan, "language") == {"zh": 144, "en": 77, "fr": 24, "": 52}
    assert unified(scan, params) == ({"neutral": 115, "happy": 29, "sad": 16, "angry": 92, "fearful": 13,
                                      "surprised": 29}, {"boredom": 3})


def test_asvp_esd_include_switches_and_layouts():
    names = real_names("asvp_esd")
    assert len(classify("asvp_esd", include_noisy=True).rows) == 297 + 3
    assert len(classify("asvp_esd", include_mixed=True).rows) == 297 + 5
    both = classify("asvp_esd", include_noisy=True, include_mixed=True)
    assert len(both.rows) == 305 and len(both.rejected) == 318 + 19 + 2 + 9
    plain = classify("asvp_esd", names)
    audio = classify("asvp_esd", ["Audio/" + n for n in names])  # the official archive's extra level
    assert [(rel.name, label) for rel, label in plain.rows] == [(rel.name, label) for rel, label in audio.rows]
    assert [(rel.name, r) for rel, r in plain.rejected] == [(rel.name, r) for rel, r in audio.rejected]
    assert parse_asvp_esd(PurePath("actor_1/03-01-02-01-18-01-106-02-02-19.wav")) == ClipLabel(
        "neutral", "asvp_001", "female", "en")  # age field 106: not defined, not used


# --- the manifest on synthetic trees made of real names ----------------------------------------

def write_clip(path: Path, freq: float = 220.0):
    """0.05 s of tone, in the container its extension names: ``.mp3`` is real MP3 (libsndfile
    >= 1.1 writes MP3; an older one fails the test rather than writing WAV data under that name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    y = 0.3 * np.sin(2 * np.pi * freq * np.arange(800) / 16000)
    # Noise seeded by the file name: distinct audio for distinct names (identical audio under two
    # names is a content duplicate), the same audio for one name in two layouts.
    y = y + 0.002 * np.random.default_rng(zlib.crc32(path.name.encode())).standard_normal(len(y))
    if path.suffix.lower() == ".mp3":
        if "MP3" not in sf.available_formats():
            pytest.fail(f"libsndfile {sf.__libsndfile_version__} cannot write MP3 (1.1 or later can): "
                        "the real trees need real .mp3 files")
        sf.write(path, y, 16000, format="MP3", subtype="MPEG_LAYER_III")
        assert sf.info(path).format == "MP3", path
    else:
        sf.write(path, y, 16000, subtype="PCM_16")   # .wav or .flac, from the extension


def build_tree(corpus_dir: Path, names):
    for i, name in enumerate(names):
        path = corpus_dir / name
        if path.suffix.lower() in EXTENSIONS:
            write_clip(path, 150 + i % 200)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("not audio\n")


def tree_names() -> dict:
    """A few hundred real names per corpus, kept small: every duplicate case, a slice of the rest."""
    crema_wav = sorted(n for n in real_names("crema_d") if n.endswith(".wav"))[::100]
    crema = crema_wav + [n.replace("AudioWAV/", "AudioMP3/").replace(".wav", ".mp3") for n in crema_wav]
    esd = [n for i, n in enumerate(real_names("esd")) if i % 20 == 0 or not n.endswith(".wav")]
    asvp = [n for i, n in enumerate(real_names("asvp_esd")) if i % 5 == 0 or n.endswith(("-66.wav", "-77.wav"))]
    return {"crema_d": crema, "jl_corpus": real_names("jl_corpus") + jl_main_copies(), "esd": esd, "asvp_esd": asvp}


def jl_main_copies() -> list[str]:
    """``JL(wav+txt)/`` partners of the perception-test WAVs (not in the sampled names).

    The release holds 2,393 WAVs: 2,370 in ``JL(wav+txt)/`` plus the 23 perception-test copies,
    of which only ``female1_angry_14a_2`` and ``male2_apologetic_14b_2`` are confirmed absent from
    ``JL(wav+txt)/`` (SOURCE.md). The other 21 are put back so one recording sits in two WAV folders.
    """
    absent = {"female1_angry_14a_2", "male2_apologetic_14b_2"}
    return [f"{JL}JL(wav+txt)/{PurePath(n).name}" for n in real_names("jl_corpus")
            if "_training/" in n and n.endswith(".wav") and PurePath(n).stem not in absent]


@pytest.fixture(scope="module")
def real_tree(tmp_path_factory):
    import yaml

    raw = tmp_path_factory.mktemp("real_names") / "data" / "raw"
    names = tree_names()
    for corpus, corpus_names in names.items():
        build_tree(raw / corpus, corpus_names)
    shutil.copy(NAMES / "crema_d" / "VideoDemographics.csv", raw / "crema_d" / "VideoDemographics.csv")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["manifest"]["corpora"] = list(names)
    manifest, excluded, stats = build_manifest(raw, params, log=lambda _: None)
    return raw, names, params, manifest, excluded, stats


def test_every_file_of_the_synthetic_trees_is_accounted_for(real_tree):
    raw, names, _, manifest, excluded, stats = real_tree
    for corpus in names:
        part = stats["per_corpus"][corpus]
        on_disk = sum(1 for p in (raw / corpus).rglob("*") if p.is_file())
        assert part["files"] == file_accounting(part) == on_disk, corpus
        assert part["excluded"] == sum(part["excluded_reasons"].values()) == int((excluded.corpus == corpus).sum())
        assert part["clips"] == int((manifest.corpus == corpus).sum())
    assert not excluded.reason.str.contains("not readable|empty|naming convention").any()
    assert manifest.path.is_unique


def test_crema_d_wav_and_mp3_become_one_row(real_tree):
    _, names, _, manifest, _, stats = real_tree
    crema = manifest[manifest.corpus == "crema_d"]
    part = stats["per_corpus"]["crema_d"]
    assert (part["clips"], part["duplicates"], part["other_files"], part["files"]) == (75, 75, 1, 151)
    assert crema.path.str.contains("/AudioWAV/").all() and crema.path.str.endswith(".wav").all()
    assert crema.path.map(lambda p: PurePath(p).stem).is_unique
    assert stats["duplicates"]["crema_d"] == {"AudioMP3 (.mp3) -> AudioWAV": 75}
    assert set(crema.gender) == {"male", "female"} and set(crema.language) == {"en"}


def test_jl_corpus_copies_become_one_row(real_tree):
    _, _, _, manifest, excluded, stats = real_tree
    jl = manifest[manifest.corpus == "jl_corpus"]
    part = stats["per_corpus"]["jl_corpus"]
    assert len(jl_main_copies()) == 21
    assert (part["clips"], part["duplicates"], part["dropped_labels"], part["other_files"], part["files"]) \
        == (93, 24 + 21, 97, 42, 256 + 21)
    assert jl.path.map(lambda p: PurePath(p).stem).is_unique
    assert stats["dropped_labels"]["jl_corpus"] == {"anxious": 50, "apologetic": 9, "assertive": 10,
                                                    "concerned": 9, "encouraging": 10, "excited": 9}
    kept = jl[jl.path.str.contains("/male2_angry_10a_1.")].path.tolist()  # a wav in two folders and an mp3
    assert len(kept) == 1 and kept[0].endswith("/JL(wav+txt)/male2_angry_10a_1.wav")
    kept = jl[jl.path.str.contains("/female1_angry_14a_2.")].path.tolist()  # main_training wav and its mp3
    assert len(kept) == 1 and kept[0].endswith("/main_training/female1_angry_14a_2.wav")
    pt = f"{JL}Perception test material on Qualtrics"
    assert stats["duplicates"]["jl_corpus"] == {
        f"{pt}/main_training (.wav) -> {JL}JL(wav+txt)": 11,
        f"{pt}/main_training/cleaned (.mp3) -> {JL}JL(wav+txt)": 11,
        f"{pt}/main_training/cleaned (.mp3) -> {pt}/main_training": 1,
        f"{pt}/sub_training (.wav) -> {JL}JL(wav+txt)": 10,
        f"{pt}/sub_training/cleaned (.mp3) -> {JL}JL(wav+txt)": 11,
        f"{pt}/sub_training/cleaned (.mp3) -> {pt}/sub_training": 1,
    }
    assert (excluded.corpus == "jl_corpus").sum() == 0


def test_esd_and_asvp_rows_match_the_parsers(real_tree):
    raw, names, params, manifest, excluded, stats = real_tree
    for corpus in ("esd", "asvp_esd"):
        scan = classify(corpus, names[corpus])
        kept, dropped = unified(scan, params)
        part = stats["per_corpus"][corpus]
        assert (part["clips"], part["dropped_labels"], part["duplicates"]) == (sum(kept.values()), sum(dropped.values()), 0)
        assert part["excluded_reasons"] == dict(sorted(Counter(r for _, r in scan.rejected).items()))
    asvp = stats["per_corpus"]["asvp_esd"]["excluded_reasons"]
    assert asvp["ASVP-ESD noisy recording (-77); manifest.asvp_include_noisy is false"] == 3
    assert asvp["ASVP-ESD mixed voices (-66); manifest.asvp_include_mixed is false"] == 5
    esd = manifest[manifest.corpus == "esd"]
    assert esd.groupby("speaker").language.first().to_dict()["esd_0001"] == "zh"
    assert stats["per_corpus"]["esd"]["other_files"] == 17


def _rows(manifest) -> list:
    """Manifest rows with the path reduced to the file name (layouts differ only in folders)."""
    rows = manifest.assign(path=manifest.path.map(lambda p: Path(p).name))
    return sorted(map(tuple, rows.values.tolist()))


@pytest.mark.parametrize("corpus, relayout", [
    ("asvp_esd", lambda n: "Audio/" + n),
    ("esd", _esd_split_layout),
])
def test_documented_layouts_give_the_same_manifest(tmp_path, params, corpus, relayout):
    names = tree_names()[corpus][:60]
    params["manifest"]["corpora"] = [corpus]
    results = []
    for layout, chosen in (("a", names), ("b", [relayout(n) for n in names])):
        raw = tmp_path / layout / "data" / "raw"
        build_tree(raw / corpus, chosen)
        manifest, excluded, stats = build_manifest(raw, params, log=lambda _: None)
        part = dict(stats["per_corpus"][corpus])
        results.append((_rows(manifest), sorted(excluded.reason), part))
    assert results[0] == results[1]
    assert results[0][0], f"{corpus}: no rows in the layout test"
