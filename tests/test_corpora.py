from pathlib import PurePath

import pytest

from ser.core.errors import DataError
from ser.data.corpora import (
    CORPUS_PARSERS,
    ClipLabel,
    Rejected,
    classify_files,
    parse_asvp_esd,
    parse_crema_d,
    parse_esd,
    parse_jl_corpus,
    parse_ravdess_song,
    parse_ravdess_speech,
    parse_savee,
    parse_tess,
    scan_corpus,
)

from .conftest import FIXTURE_FILES, write_tone


@pytest.mark.parametrize("name, expected", [
    ("Actor_01/03-01-01-01-01-01-01.flac", ClipLabel("neutral", "ravdess_01", "male", "en")),
    ("Actor_12/03-01-02-02-01-02-12.wav", ClipLabel("calm", "ravdess_12", "female", "en")),
    ("Actor_24/03-01-08-02-02-02-24.wav", ClipLabel("surprised", "ravdess_24", "female", "en")),
])
def test_ravdess_speech(name, expected):
    assert parse_ravdess_speech(PurePath(name)) == expected


def test_ravdess_speech_and_song_share_speakers_but_not_files():
    assert parse_ravdess_song(PurePath("Actor_05/03-02-05-01-01-01-05.wav")) == ClipLabel("angry", "ravdess_05", "male", "en")
    assert parse_ravdess_song(PurePath("Actor_05/03-01-05-01-01-01-05.wav")) is None  # a speech file
    assert parse_ravdess_speech(PurePath("Actor_05/03-02-05-01-01-01-05.wav")) is None
    assert parse_ravdess_speech(PurePath("Actor_05/02-01-05-01-01-01-05.wav")) is None  # video-only modality
    assert parse_ravdess_speech(PurePath("Actor_05/03-01-09-01-01-01-05.wav")) is None  # no emotion 09


@pytest.mark.parametrize("name, emotion, speaker", [
    ("TESS Toronto emotional speech set data/OAF_neutral/OA_bite_neutral.flac", "neutral", "tess_OAF"),
    ("TESS Toronto emotional speech set data/YAF_pleasant_surprised/YAF_back_ps.wav", "pleasant_surprise", "tess_YAF"),
    ("TESS Toronto emotional speech set data/OAF_Pleasant_surprise/OAF_bean_ps.wav", "pleasant_surprise", "tess_OAF"),
    ("TESS Toronto emotional speech set data/OAF_Fear/OAF_burn_fear.wav", "fear", "tess_OAF"),
    ("TESS Toronto emotional speech set data/YAF_sad/YAF_young_sad.wav", "sad", "tess_YAF"),
])
def test_tess(name, emotion, speaker):
    assert parse_tess(PurePath(name)) == ClipLabel(emotion, speaker, "female", "en")


def test_tess_rejects_unknown_tokens():
    assert parse_tess(PurePath("x/OAF_bite_bored.wav")) is None
    assert parse_tess(PurePath("x/ZZF_bite_sad.wav")) is None


@pytest.mark.parametrize("name, emotion, speaker", [
    ("ALL/DC_a01.flac", "anger", "savee_DC"),
    ("ALL/JE_sa03.wav", "sadness", "savee_JE"),   # 'sa' is sadness, not 's' + 'a'
    ("ALL/JK_su15.wav", "surprise", "savee_JK"),  # 'su' is surprise
    ("ALL/KL_n30.wav", "neutral", "savee_KL"),
    ("AudioData/DC/sa01.wav", "sadness", "savee_DC"),  # per-speaker layout of the original release
    ("AudioData/JE/h12.wav", "happiness", "savee_JE"),
])
def test_savee(name, emotion, speaker):
    assert parse_savee(PurePath(name)) == ClipLabel(emotion, speaker, "male", "en")


def test_savee_rejects_other_names():
    assert parse_savee(PurePath("ALL/XX_a01.wav")) is None
    assert parse_savee(PurePath("ALL/DC_x01.wav")) is None
    assert parse_savee(PurePath("Other/sa01.wav")) is None  # nested form needs a speaker folder


def test_crema_d_with_and_without_demographics():
    name = PurePath("AudioWAV/1001_DFA_ANG_XX.wav")
    assert parse_crema_d(name) == ClipLabel("anger", "crema_1001", "", "en")
    assert parse_crema_d(name, {"1001": "male"}) == ClipLabel("anger", "crema_1001", "male", "en")
    assert parse_crema_d(PurePath("AudioMP3/1001_DFA_ANG_XX.mp3")) == parse_crema_d(name)
    assert parse_crema_d(PurePath("AudioWAV/1091_WSI_NEU_LO.wav")).emotion == "neutral"
    assert parse_crema_d(PurePath("AudioWAV/1001_DFA_XYZ_XX.wav")) is None


def test_jl_corpus():
    assert parse_jl_corpus(PurePath("JL(wav+txt)/female1_angry_1a_1.wav")) == ClipLabel("angry", "jl_female1", "female", "en")
    assert parse_jl_corpus(PurePath("JL(wav+txt)/male2_apologetic_12b_2.wav")) == ClipLabel("apologetic", "jl_male2", "male",
                                                                                           "en")
    assert parse_jl_corpus(PurePath("x/cleaned/male1_excited_5b_2.mp3")).emotion == "excited"
    assert parse_jl_corpus(PurePath("JL(wav+txt)/female1_angry_1a_1_extra.wav")) is None
    assert parse_jl_corpus(PurePath("JL(wav+txt)/female1_angry_1a.wav")) is None    # no take
    assert parse_jl_corpus(PurePath("JL(wav+txt)/female1_bored_1a_1.wav")) is None  # not a JL emotion
    assert parse_jl_corpus(PurePath("JL(wav+txt)/female3_angry_1a_1.wav")) is None  # no third speaker
    assert parse_jl_corpus(PurePath("JL(wav+txt)/female1_angry_16a_1.wav")) is None  # 15 sentences


def test_esd_emotion_gender_language():
    assert parse_esd(PurePath("0011/Angry/train/0011_000351.wav")) == ClipLabel("angry", "esd_0011", "male", "en")
    assert parse_esd(PurePath("0015/Surprise/0015_001500.wav")) == ClipLabel("surprise", "esd_0015", "female", "en")
    assert parse_esd(PurePath("0001/Neutral/0001_000350.wav")) == ClipLabel("neutral", "esd_0001", "female", "zh")
    assert parse_esd(PurePath("0010/Sad/0010_001400.wav")) == ClipLabel("sad", "esd_0010", "male", "zh")
    # the utterance id block gives the emotion without a folder, and overrules a folder that disagrees
    assert parse_esd(PurePath("0015/0015_001500.wav")) == ClipLabel("surprise", "esd_0015", "female", "en")
    assert isinstance(parse_esd(PurePath("0015/Happy/0015_001500.wav")), Rejected)
    assert parse_esd(PurePath("0015/Surprise/0015_001751.wav")) is None  # ids stop at 1750
    assert parse_esd(PurePath("0021/Surprise/0021_001500.wav")) is None  # 20 speakers


def test_asvp_esd():
    assert parse_asvp_esd(PurePath("actor_1/03-01-05-02-11-01-02-03-01.wav")) == ClipLabel("angry", "asvp_001", "female", "zh")
    assert parse_asvp_esd(PurePath("actor_2/03-01-04-01-02-02-02-01-02-14.wav")) == ClipLabel("sad", "asvp_002", "male", "en")
    assert parse_asvp_esd(PurePath("a/03-01-04-01-02-02-02-01-04-14-02.wav")).language == "fr"
    assert parse_asvp_esd(PurePath("a/03-01-04-01-02-02-02-01-03.wav")).language == ""  # not a README code
    assert isinstance(parse_asvp_esd(PurePath("a/03-02-13-01-01-03-02-01-01.wav")), Rejected)  # non-speech
    assert parse_asvp_esd(PurePath("a/03-01-14-01-01-03-02-01-01.wav")) is None  # no emotion 14
    assert parse_asvp_esd(PurePath("a/03-01-05-01-01-01-01.wav")) is None        # a RAVDESS-style name
    assert parse_asvp_esd(PurePath("a/03-01-05-02-01-01-02-03.wav")) is None     # 8 fields: no language


def test_every_corpus_has_fixtures_and_all_fixture_names_parse(raw_dir):
    assert set(FIXTURE_FILES) == set(CORPUS_PARSERS)
    for corpus, names in FIXTURE_FILES.items():
        scan = scan_corpus(raw_dir / corpus, corpus, [".wav", ".flac", ".mp3"])
        assert len(scan.rows) + len(scan.rejected) == len(names), corpus
        assert scan.unrecognised == [] and scan.duplicates == []
    assert [reason for _, reason in scan_corpus(raw_dir / "asvp_esd", "asvp_esd", [".wav"]).rejected] == [
        "ASVP-ESD non-speech vocalisation (vocal channel 02)"]


def test_scan_counts_unrecognised_and_other_files(raw_dir):
    write_tone(raw_dir / "tess" / "notes" / "README.wav")
    scan = scan_corpus(raw_dir / "jl_corpus", "jl_corpus", [".wav"])
    assert scan.other_files == 1  # the transcript .txt
    scan = scan_corpus(raw_dir / "tess", "tess", [".wav"])
    assert [p.name for p in scan.unrecognised] == ["README.wav"]


def test_crema_gender_from_demographics(raw_dir):
    rows = dict((p.name, c) for p, c in scan_corpus(raw_dir / "crema_d", "crema_d", [".wav"]).rows)
    assert rows["1001_DFA_ANG_XX.wav"].gender == "male"
    assert rows["1002_IEO_HAP_HI.wav"].gender == "female"
    assert rows["1003_TIE_SAD_LO.wav"].gender == ""  # not in the demographics file


def test_folder_without_recognisable_names_is_a_clear_error(tmp_path):
    write_tone(tmp_path / "savee" / "recording_one.wav")
    with pytest.raises(DataError, match=r"savee: no file names follow the savee naming convention \(1 audio file"):
        scan_corpus(tmp_path / "savee", "savee", [".wav"])
    (tmp_path / "esd").mkdir()
    with pytest.raises(DataError, match="esd: no file names follow"):
        scan_corpus(tmp_path / "esd", "esd", [".wav"])


def test_asvp_rejections_in_order_and_include_switches():
    def reason(name, **options):
        parsed = parse_asvp_esd(PurePath(name), **options)
        return parsed.reason if isinstance(parsed, Rejected) else parsed

    # non-speech first, even for a noisy name; then emotions 09-13; then noisy; then mixed voices
    assert "non-speech" in reason("actor_27/03-02-06-02-27-27-02-02-02-16-77.wav")
    assert "emotion 09 (excited)" in reason("actor_106/03-01-09-01-02-106-02-02-02-19-66.wav")
    assert "emotion 13 (breath)" in reason("actor_2/03-01-13-01-02-02-02-02-02.wav")
    assert "noisy" in reason("actor_27/03-01-04-01-03-27-02-02-02-77.wav")
    assert "mixed voices" in reason("actor_106/03-01-02-01-02-106-02-02-02-12-66.wav")
    assert reason("actor_27/03-01-04-01-03-27-02-02-02-77.wav", include_noisy=True) == ClipLabel(
        "sad", "asvp_027", "female", "en")
    assert reason("actor_106/03-01-02-01-02-106-02-02-02-12-66.wav", include_mixed=True) == ClipLabel(
        "neutral", "asvp_106", "male", "en")
    # undefined age (106) and intensity values do not matter; the speaker is the actor field, not the folder
    assert reason("actor_1/03-01-02-01-18-01-106-02-02-19.wav") == ClipLabel("neutral", "asvp_001", "female", "en")
    assert reason("actor_/03-01-05-01-01-54-02-02-02.wav").speaker == "asvp_054"


def test_one_row_per_recording_lossless_first_then_nearest_the_root():
    jl = "Raw JL corpus (unchecked and unannotated)/"
    names = [
        "AudioMP3/1001_DFA_ANG_XX.mp3", "AudioWAV/1001_DFA_ANG_XX.wav", "AudioMP3/1002_DFA_ANG_XX.mp3",
    ]
    scan = classify_files(names, "crema_d", [".wav", ".mp3"])
    assert [str(rel) for rel, _ in scan.rows] == ["AudioMP3/1002_DFA_ANG_XX.mp3", "AudioWAV/1001_DFA_ANG_XX.wav"]
    assert [(str(a), str(b)) for a, b in scan.duplicates] == [("AudioMP3/1001_DFA_ANG_XX.mp3", "AudioWAV/1001_DFA_ANG_XX.wav")]
    names = [jl + "Perception test material on Qualtrics/main_training/cleaned/male2_angry_10a_1.mp3",
             jl + "Perception test material on Qualtrics/main_training/male2_angry_10a_1.wav",
             jl + "JL(wav+txt)/male2_angry_10a_1.wav", jl + "JL(wav+txt)/male2_angry_10a_1.txt"]
    scan = classify_files(names, "jl_corpus", [".wav", ".mp3"])
    assert [str(rel) for rel, _ in scan.rows] == [jl + "JL(wav+txt)/male2_angry_10a_1.wav"]
    assert len(scan.duplicates) == 2 and scan.other_files == 1 and scan.files == len(names)
    # SAVEE's per-speaker layout reuses stems across speakers: they are different recordings
    scan = classify_files(["AudioData/DC/a01.wav", "AudioData/JE/a01.wav"], "savee", [".wav"])
    assert len(scan.rows) == 2 and scan.duplicates == []
