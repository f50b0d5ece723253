"""Parsers for emotional speech corpora in their original release layouts.

Each parser takes a file's path relative to its corpus folder and returns one of:

- a ``ClipLabel`` (the corpus's own emotion word, a corpus-scoped speaker id, gender and
  language if known) for a clip the pipeline can use;
- a ``Rejected`` with a one-line reason, for a name that follows the corpus's convention but
  whose clip is deliberately not used (e.g. an ASVP-ESD non-speech vocalisation);
- ``None`` when the name does not follow that corpus's convention at all.

Mapping corpus words onto the unified label set happens later, from ``labels.map`` in
params.yaml. ``scan_corpus`` walks a corpus folder and sorts every file into exactly one of:
clip rows, duplicates (other copies of a recording already in the rows), rejected, unrecognised
names, or ignored non-audio files, so that nothing is lost without being counted. A corpus
without a parser is described by a table instead (``ser.data.tables``), which sorts its files into
the same ``CorpusScan``.

Languages are ISO 639-1 codes (``en``, ``zh``, ``fr``); ``""`` means unknown.
"""

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from ser.core.errors import DataError


@dataclass(frozen=True)
class ClipLabel:
    emotion: str
    speaker: str
    gender: str = ""
    language: str = ""


@dataclass(frozen=True)
class Rejected:
    """A name that follows the corpus convention, for a clip that is deliberately not used."""

    reason: str


RAVDESS_EMOTIONS = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
    "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised",
}
_RAVDESS = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def _ravdess(rel: PurePath, vocal_channel: str):
    m = _RAVDESS.match(rel.stem)
    if not m or m.group(1) != "03" or m.group(2) != vocal_channel or m.group(3) not in RAVDESS_EMOTIONS:
        return None
    actor = int(m.group(7))
    # RAVDESS speech and song share actors: one speaker id for both keeps splits speaker-independent.
    return ClipLabel(RAVDESS_EMOTIONS[m.group(3)], f"ravdess_{actor:02d}", "male" if actor % 2 else "female", "en")


def parse_ravdess_speech(rel: PurePath):
    """RAVDESS speech: ``Actor_XX/03-01-EE-II-SS-RR-AA.wav`` (odd actors male; North American English)."""
    return _ravdess(rel, "01")


def parse_ravdess_song(rel: PurePath):
    """RAVDESS song: ``Actor_XX/03-02-EE-II-SS-RR-AA.wav``."""
    return _ravdess(rel, "02")


TESS_EMOTIONS = {
    "angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy",
    "neutral": "neutral", "ps": "pleasant_surprise", "sad": "sad",
}
_TESS = re.compile(r"^(OAF|YAF|OA)_([^_]+)_([a-z]+)$", re.IGNORECASE)


def parse_tess(rel: PurePath):
    """TESS: ``<FOLDER>/<OAF|YAF>_<word>_<emotion>.wav``; ``ps`` is pleasant surprise (Canadian English).

    The original release names one file ``OA_bite_neutral`` (speaker prefix typo): it is OAF.
    """
    m = _TESS.match(rel.stem)
    if not m or m.group(3).lower() not in TESS_EMOTIONS:
        return None
    speaker = m.group(1).upper()
    speaker = "OAF" if speaker == "OA" else speaker
    return ClipLabel(TESS_EMOTIONS[m.group(3).lower()], f"tess_{speaker}", "female", "en")


SAVEE_EMOTIONS = {
    "a": "anger", "d": "disgust", "f": "fear", "h": "happiness",
    "n": "neutral", "sa": "sadness", "su": "surprise",
}
SAVEE_SPEAKERS = ("DC", "JE", "JK", "KL")
_SAVEE_FLAT = re.compile(r"^(DC|JE|JK|KL)_(sa|su|a|d|f|h|n)(\d+)$")
_SAVEE_NESTED = re.compile(r"^(sa|su|a|d|f|h|n)(\d+)$")


def parse_savee(rel: PurePath):
    """SAVEE: ``ALL/<SPK>_<code><nn>.wav`` or ``AudioData/<SPK>/<code><nn>.wav``.

    Codes: a anger, d disgust, f fear, h happiness, n neutral, sa sadness, su surprise
    (two-letter codes are matched before the one-letter ones). All four speakers are male
    (British English).
    """
    m = _SAVEE_FLAT.match(rel.stem)
    if m:
        return ClipLabel(SAVEE_EMOTIONS[m.group(2)], f"savee_{m.group(1)}", "male", "en")
    m = _SAVEE_NESTED.match(rel.stem)
    if m and rel.parent.name in SAVEE_SPEAKERS:
        return ClipLabel(SAVEE_EMOTIONS[m.group(1)], f"savee_{rel.parent.name}", "male", "en")
    return None


CREMA_EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
_CREMA = re.compile(r"^(\d{4})_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_(LO|MD|HI|XX|X)$")


def parse_crema_d(rel: PurePath, genders: dict | None = None):
    """CREMA-D: ``AudioWAV/<actor 1001-1091>_<sentence>_<EMO>_<LO|MD|HI|XX>.wav`` (US English).

    The release ships every clip twice, ``AudioWAV/x.wav`` and ``AudioMP3/x.mp3``; both parse to
    the same label and ``scan_corpus`` keeps the WAV. Gender is not in the name; it comes from
    ``VideoDemographics.csv`` (``Sex`` column) when that file is present.
    """
    m = _CREMA.match(rel.stem)
    if not m:
        return None
    actor = m.group(1)
    return ClipLabel(CREMA_EMOTIONS[m.group(3)], f"crema_{actor}", (genders or {}).get(actor, ""), "en")


JL_PRIMARY = ("angry", "excited", "happy", "neutral", "sad")
JL_SECONDARY = ("anxious", "apologetic", "assertive", "concerned", "encouraging")
_JL = re.compile(r"^(female|male)([12])_([a-z]+)_(\d{1,2})([ab])_([12])$")


def parse_jl_corpus(rel: PurePath):
    """JL-Corpus: ``<female|male><1|2>_<emotion>_<sentence 1-15><a|b>_<take 1|2>.wav`` (NZ English).

    E.g. ``female1_angry_10a_1``. The trailing take (``_1``/``_2``) is not in the release's
    Format_Intro.txt but is on every real name. Emotions are the five primary ones (angry,
    excited, happy, neutral, sad) and the five secondary ones (anxious, apologetic, assertive,
    concerned, encouraging); both are returned as the corpus word, and those outside
    ``labels.classes`` (all secondary ones, and ``excited`` unless mapped) are dropped and
    counted by the manifest. Any other emotion word is not a JL-Corpus name.

    Copies of the release hold the same recording in ``JL(wav+txt)/``, in the perception-test
    folders ``main_training/`` / ``sub_training/`` and as MP3 under ``cleaned/``: ``scan_corpus``
    keeps one file per name (the WAV nearest the corpus root).
    """
    m = _JL.match(rel.stem)
    if not m or m.group(3) not in JL_PRIMARY + JL_SECONDARY or not 1 <= int(m.group(4)) <= 15:
        return None
    return ClipLabel(m.group(3), f"jl_{m.group(1)}{m.group(2)}", m.group(1), "en")


ESD_EMOTIONS = {"neutral": "neutral", "angry": "angry", "happy": "happy", "sad": "sad", "surprise": "surprise"}
# Utterance ids are numbered in blocks of 350 per emotion, in this order, for every speaker.
ESD_BLOCKS = ("neutral", "angry", "happy", "sad", "surprise")
# Gender and language per speaker, from the ReadMe shipped with the release ("0001: Chinese Female", ...).
ESD_SPEAKERS = {
    "0001": ("female", "zh"), "0002": ("female", "zh"), "0003": ("female", "zh"), "0004": ("male", "zh"),
    "0005": ("male", "zh"), "0006": ("male", "zh"), "0007": ("female", "zh"), "0008": ("male", "zh"),
    "0009": ("female", "zh"), "0010": ("male", "zh"),
    "0011": ("male", "en"), "0012": ("male", "en"), "0013": ("male", "en"), "0014": ("male", "en"),
    "0015": ("female", "en"), "0016": ("female", "en"), "0017": ("female", "en"), "0018": ("female", "en"),
    "0019": ("female", "en"), "0020": ("male", "en"),
}
_ESD = re.compile(r"^(\d{4})_(\d{6})$")


def esd_block_emotion(utterance: int) -> str | None:
    """The emotion of ESD utterance id 1-1750 (350 per emotion: neutral, angry, happy, sad, surprise)."""
    return ESD_BLOCKS[(utterance - 1) // 350] if 1 <= utterance <= 1750 else None


def parse_esd(rel: PurePath):
    """ESD: ``<spk 0001-0020>/<Emotion>/[train|evaluation|test/]<spk>_<nnnnnn>.wav``.

    The emotion is the ``Neutral|Angry|Happy|Sad|Surprise`` folder above the file; the utterance id
    says the same (ids 1-350 neutral, 351-700 angry, 701-1050 happy, 1051-1400 sad, 1401-1750
    surprise), so a file outside any emotion folder still gets its emotion, and a file whose folder
    disagrees with its id is rejected rather than guessed. Speakers 0001-0010 are Mandarin (``zh``),
    0011-0020 English (``en``); genders are the release ReadMe's (nkululeko's loader swaps 0012 and
    0019; the ReadMe is followed). The per-speaker transcript ``<spk>/<spk>.txt`` is not audio.
    """
    m = _ESD.match(rel.stem)
    if not m or m.group(1) not in ESD_SPEAKERS:
        return None
    emotion = esd_block_emotion(int(m.group(2)))
    if emotion is None:
        return None
    folder = next((ESD_EMOTIONS[p.lower()] for p in reversed(rel.parent.parts) if p.lower() in ESD_EMOTIONS), None)
    if folder is not None and folder != emotion:
        return Rejected(f"ESD emotion folder ({folder}) disagrees with the utterance id ({emotion})")
    gender, language = ESD_SPEAKERS[m.group(1)]
    return ClipLabel(emotion, f"esd_{m.group(1)}", gender, language)


ASVP_EMOTIONS = {
    "01": "boredom", "02": "neutral", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
    "07": "disgust", "08": "surprised", "09": "excited", "10": "pleasure", "11": "pain",
    "12": "disappointment", "13": "breath",
}
ASVP_SPEECH_EMOTIONS = ("01", "02", "03", "04", "05", "06", "07", "08")
ASVP_LANGUAGES = {"01": "zh", "02": "en", "04": "fr"}  # the README's codes; "others: Russian and Others"
ASVP_NOISY, ASVP_MIXED = "77", "66"
# modality-channel-emotion-intensity-statement-actor-age-source[-language[-extra[-extra]]]
_ASVP = re.compile(r"^03-(01|02)-(\d\d)-(\d\d)-(\d\d)-(\d{2,3})-(\d{2,3})-(\d\d)((?:-\d\d){1,3})$")


def parse_asvp_esd(rel: PurePath, include_noisy: bool = False, include_mixed: bool = False):
    """ASVP-ESD: ``[Audio/]actor_<N>/03-<channel>-<emotion>-<intensity>-<statement>-<actor>-<age>-<source>-<lang>[-..]``.

    Names (``.wav``) have 9, 10 or 11 two- or three-digit fields; field 6 is the actor (even male, odd
    female: the opposite of RAVDESS), field 9 the language (01 Chinese, 02 English, 04 French;
    the README lumps Russian and others under unspecified codes, so any other value, including
    the sub-codes that some 9-field names carry there, is unknown ``""``; nkululeko's loader numbers
    languages differently, the README is followed). The speaker comes from
    the actor field, not the folder: the release has a folder named ``actor_`` with no number
    holding several actors' files. Intensity, statement, age and source are not used, so values
    the README does not define there (intensity 18, age 106/110) do not affect a clip.

    Kept: speech (vocal channel 01) with emotion 01-08 (boredom, neutral, happy, sad, angry,
    fearful, disgust, surprised; boredom has no class in params.yaml, so the manifest drops and
    counts it), recorded cleanly. Rejected, with the first reason that applies:
    1. vocal channel 02: non-speech vocalisations (laughs, cries, screams, ...);
    2. emotion 09-13 (excited, pleasure, pain, disappointment, breath): not speech emotions of the
       unified set;
    3. last field 77: recorded in a high-noise environment (kept if ``include_noisy``);
    4. last field 66: mixed voices (kept if ``include_mixed``), so the speaker label is unreliable.
    """
    m = _ASVP.match(rel.stem)
    if not m or m.group(2) not in ASVP_EMOTIONS:
        return None
    channel, code = m.group(1), m.group(2)
    tail = m.group(8).lstrip("-").split("-")
    if channel != "01":
        return Rejected("ASVP-ESD non-speech vocalisation (vocal channel 02)")
    if code not in ASVP_SPEECH_EMOTIONS:
        return Rejected(f"ASVP-ESD emotion {code} ({ASVP_EMOTIONS[code]}) is not a speech emotion of the unified set")
    if tail[-1] == ASVP_NOISY and not include_noisy:
        return Rejected("ASVP-ESD noisy recording (-77); manifest.asvp_include_noisy is false")
    if tail[-1] == ASVP_MIXED and not include_mixed:
        return Rejected("ASVP-ESD mixed voices (-66); manifest.asvp_include_mixed is false")
    language = ASVP_LANGUAGES.get(tail[0], "") if tail[0] not in (ASVP_NOISY, ASVP_MIXED) else ""
    actor = int(m.group(5))
    return ClipLabel(ASVP_EMOTIONS[code], f"asvp_{actor:03d}", "female" if actor % 2 else "male", language)


CORPUS_PARSERS = {
    "ravdess_speech": parse_ravdess_speech,
    "ravdess_song": parse_ravdess_song,
    "crema_d": parse_crema_d,
    "tess": parse_tess,
    "savee": parse_savee,
    "jl_corpus": parse_jl_corpus,
    "esd": parse_esd,
    "asvp_esd": parse_asvp_esd,
}

# Lossless formats are preferred when one recording is present in several formats.
LOSSLESS = (".wav", ".flac", ".aif", ".aiff")

UNRECOGNISED = "file name does not follow the corpus naming convention"
NOT_UTF8 = "file or folder name is not valid UTF-8 (rename it)"


def crema_genders(corpus_dir: Path) -> dict:
    """Actor id -> 'male'/'female' from CREMA-D's ``VideoDemographics.csv``, if the folder has one."""
    for path in sorted(corpus_dir.rglob("VideoDemographics.csv")):
        with open(path, newline="") as f:
            return {row["ActorID"].strip(): row["Sex"].strip().lower() for row in csv.DictReader(f)
                    if row.get("ActorID") and row.get("Sex")}
    return {}


def parser_options(corpus: str, corpus_dir: Path, manifest_cfg: dict | None = None) -> dict:
    """Keyword arguments for ``corpus``'s parser: CREMA-D genders, ASVP-ESD include switches."""
    cfg = manifest_cfg or {}
    if corpus == "crema_d":
        return {"genders": crema_genders(corpus_dir)}
    if corpus == "asvp_esd":
        return {"include_noisy": bool(cfg.get("asvp_include_noisy", False)),
                "include_mixed": bool(cfg.get("asvp_include_mixed", False))}
    return {}


def recording_key(rel: PurePath, parsed) -> tuple:
    """Identity of a recording across copies: the speaker (when parsed) and the case-folded file stem.

    Every supported corpus names a recording uniquely by its stem, except SAVEE's per-speaker
    layout (``DC/a01``), which the speaker disambiguates.
    """
    return getattr(parsed, "speaker", ""), rel.stem.lower()


def preference(rel: PurePath) -> tuple:
    """Sort key among copies of one recording: lossless first, then nearest the root, then path order."""
    return rel.suffix.lower() not in LOSSLESS, len(rel.parts), rel.as_posix()


@dataclass
class CorpusScan:
    """What was found in one corpus folder; every file is in exactly one list (or ``other_files``)."""

    rows: list          # (relative path, ClipLabel): one per recording, its preferred copy
    unrecognised: list  # relative paths of audio-extension files whose names do not parse
    other_files: int    # files without an audio extension (transcripts, csv, readmes, .DS_Store)
    rejected: list = field(default_factory=list)    # (relative path, reason): deliberately not used
    duplicates: list = field(default_factory=list)  # (relative path, relative path of the copy kept)
    # Why an ``unrecognised`` file is excluded, and how a summary line counts them: a parser's
    # corpus does not recognise the name; a table-described corpus does not list the file.
    unrecognised_reason: str = UNRECOGNISED
    unrecognised_note: str = "unrecognised names"

    @property
    def files(self) -> int:
        """Every file under the corpus folder."""
        return len(self.rows) + len(self.unrecognised) + self.other_files + len(self.rejected) + len(self.duplicates)


def is_utf8(name: str) -> bool:
    """False for a path that came from undecodable bytes (Python keeps them as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable_path(path) -> str:
    """A path as text that can always be written, undecodable bytes shown as ``\\xNN``."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def classify_files(rels, corpus: str, extensions, options: dict | None = None) -> CorpusScan:
    """Sort relative file paths of one corpus into a ``CorpusScan`` (pure: reads no files).

    ``options`` are the parser's keyword arguments. Copies of one recording (same
    ``recording_key``, e.g. CREMA-D's ``AudioWAV``/``AudioMP3``) are kept once, the first by
    ``preference``; the others go to ``duplicates``, whether the kept copy is a row or rejected.
    """
    parser = CORPUS_PARSERS[corpus]
    exts = {e.lower() for e in extensions}
    scan = CorpusScan([], [], 0)
    copies = {}
    for rel in sorted(PurePath(r) for r in rels):
        if rel.suffix.lower() not in exts or rel.name.startswith("."):
            scan.other_files += 1
            continue
        if not is_utf8(str(rel)):
            # CSV manifests and the downstream stages need text paths: exclude, count, name it.
            scan.rejected.append((rel, NOT_UTF8))
            continue
        parsed = parser(rel, **(options or {}))
        if parsed is None:
            scan.unrecognised.append(rel)
        else:
            copies.setdefault(recording_key(rel, parsed), []).append((rel, parsed))
    for group in copies.values():
        group.sort(key=lambda item: preference(item[0]))
        rel, parsed = group[0]
        if isinstance(parsed, Rejected):
            scan.rejected.append((rel, parsed.reason))
        else:
            scan.rows.append((rel, parsed))
        scan.duplicates.extend((other, rel) for other, _ in group[1:])
    scan.rows.sort(key=lambda item: item[0])
    scan.rejected.sort()
    scan.duplicates.sort()
    return scan


def scan_corpus(corpus_dir: Path, corpus: str, extensions, options: dict | None = None) -> CorpusScan:
    """Classify every file under ``corpus_dir``; raise ``DataError`` if no name is recognisable.

    ``options`` are the parser's keyword arguments (default: ``parser_options(corpus, corpus_dir)``).
    """
    options = parser_options(corpus, corpus_dir) if options is None else options
    rels = [p.relative_to(corpus_dir) for p in corpus_dir.rglob("*") if p.is_file()]
    scan = classify_files(rels, corpus, extensions, options)
    if not scan.rows and not scan.rejected:
        seen = len(scan.unrecognised)
        exts = sorted({e.lower() for e in extensions})
        raise DataError(
            f"{corpus_dir}: no file names follow the {corpus} naming convention "
            f"({seen} audio file{'s' if seen != 1 else ''} with extensions {', '.join(exts)} checked)"
        )
    return scan
