"""Parsers for emotional speech corpora in their original release layouts.

Each parser takes a file's path relative to its corpus folder and returns a ``ClipLabel``
(the corpus's own emotion word, a corpus-scoped speaker id, gender if known) or ``None``
when the name does not follow that corpus's convention. Mapping corpus words onto the
unified label set happens later, from ``labels.map`` in params.yaml.
"""

import csv
import re
from dataclasses import dataclass
from pathlib import Path, PurePath

from .errors import DataError


@dataclass(frozen=True)
class ClipLabel:
    emotion: str
    speaker: str
    gender: str = ""


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
    return ClipLabel(RAVDESS_EMOTIONS[m.group(3)], f"ravdess_{actor:02d}", "male" if actor % 2 else "female")


def parse_ravdess_speech(rel: PurePath):
    """RAVDESS speech: ``Actor_XX/03-01-EE-II-SS-RR-AA.wav`` (odd actors male)."""
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
    """TESS: ``<FOLDER>/<OAF|YAF>_<word>_<emotion>.wav``; ``ps`` is pleasant surprise.

    The original release names one file ``OA_bite_neutral`` (speaker prefix typo): it is OAF.
    """
    m = _TESS.match(rel.stem)
    if not m or m.group(3).lower() not in TESS_EMOTIONS:
        return None
    speaker = m.group(1).upper()
    speaker = "OAF" if speaker == "OA" else speaker
    return ClipLabel(TESS_EMOTIONS[m.group(3).lower()], f"tess_{speaker}", "female")


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
    (two-letter codes are matched before the one-letter ones). All four speakers are male.
    """
    m = _SAVEE_FLAT.match(rel.stem)
    if m:
        return ClipLabel(SAVEE_EMOTIONS[m.group(2)], f"savee_{m.group(1)}", "male")
    m = _SAVEE_NESTED.match(rel.stem)
    if m and rel.parent.name in SAVEE_SPEAKERS:
        return ClipLabel(SAVEE_EMOTIONS[m.group(1)], f"savee_{rel.parent.name}", "male")
    return None


CREMA_EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
_CREMA = re.compile(r"^(\d{4})_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_(LO|MD|HI|XX|X)$")


def parse_crema_d(rel: PurePath, genders: dict | None = None):
    """CREMA-D: ``AudioWAV/<actor 1001-1091>_<sentence>_<EMO>_<LO|MD|HI|XX>.wav``.

    Gender is not in the name; it comes from ``VideoDemographics.csv`` when that file is present.
    """
    m = _CREMA.match(rel.stem)
    if not m:
        return None
    actor = m.group(1)
    return ClipLabel(CREMA_EMOTIONS[m.group(3)], f"crema_{actor}", (genders or {}).get(actor, ""))


_JL = re.compile(r"^(male|female)(\d+)_([a-z]+)_(\d+[a-z])_(\d+)$")


def parse_jl_corpus(rel: PurePath):
    """JL-Corpus: ``<male|female><n>_<emotion>_<sentence><a|b>_<take>.wav``, e.g. ``female1_angry_10a_1``.

    Emotions include the primary five (angry, sad, neutral, happy, excited) and secondary ones
    (anxious, apologetic, ...); those outside labels.classes are dropped and counted.
    """
    m = _JL.match(rel.stem)
    if not m:
        return None
    return ClipLabel(m.group(3), f"jl_{m.group(1)}{m.group(2)}", m.group(1))


ESD_EMOTIONS = {"angry": "angry", "happy": "happy", "neutral": "neutral", "sad": "sad", "surprise": "surprise"}
_ESD = re.compile(r"^(\d{4})_(\d{6})$")


def parse_esd(rel: PurePath):
    """ESD: ``<spk 0001-0020>/<Emotion>/[train|evaluation|test/]<spk>_<nnnnnn>.wav``.

    The emotion is the ``Angry|Happy|Neutral|Sad|Surprise`` folder above the file.
    """
    m = _ESD.match(rel.stem)
    if not m:
        return None
    emotion = next((ESD_EMOTIONS[p.lower()] for p in reversed(rel.parent.parts) if p.lower() in ESD_EMOTIONS), None)
    if emotion is None:
        return None
    return ClipLabel(emotion, f"esd_{m.group(1)}")


ASVP_EMOTIONS = {
    "01": "boredom", "02": "neutral", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
    "07": "disgust", "08": "surprised", "09": "excited", "10": "pleasure", "11": "pain",
    "12": "disappointment", "13": "breath",
}
_ASVP = re.compile(r"^03-(01|02)-(\d\d)-(\d\d)-(\d\d)-(\d\d\d?)-(\d\d)-(\d\d)(-\d\d)*$")


def parse_asvp_esd(rel: PurePath):
    """ASVP-ESD: ``actor_XX/03-<channel>-<emotion>-<intensity>-<statement>-<actor>-<age>-<source>[-..].wav``.

    Emotion codes 01 boredom … 13 breath; odd actor numbers are female, even male.
    """
    m = _ASVP.match(rel.stem)
    if not m or m.group(2) not in ASVP_EMOTIONS:
        return None
    actor = int(m.group(5))
    return ClipLabel(ASVP_EMOTIONS[m.group(2)], f"asvp_{actor:03d}", "female" if actor % 2 else "male")


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


def crema_genders(corpus_dir: Path) -> dict:
    """Actor id -> 'male'/'female' from CREMA-D's ``VideoDemographics.csv``, if the folder has one."""
    for path in sorted(corpus_dir.rglob("VideoDemographics.csv")):
        with open(path, newline="") as f:
            return {row["ActorID"].strip(): row["Sex"].strip().lower() for row in csv.DictReader(f)
                    if row.get("ActorID") and row.get("Sex")}
    return {}


@dataclass
class CorpusScan:
    """What was found in one corpus folder."""

    rows: list          # (relative path, ClipLabel) for files whose names parse
    unrecognised: list  # relative paths of audio-extension files whose names do not parse
    other_files: int    # files without an audio extension (transcripts, csv, readmes)


def scan_corpus(corpus_dir: Path, corpus: str, extensions) -> CorpusScan:
    """Parse every file name under ``corpus_dir``; raise ``DataError`` if none is recognisable."""
    parser = CORPUS_PARSERS[corpus]
    genders = crema_genders(corpus_dir) if corpus == "crema_d" else None
    exts = {e.lower() for e in extensions}
    scan = CorpusScan([], [], 0)
    for path in sorted(p for p in corpus_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(corpus_dir)
        if path.suffix.lower() not in exts or path.name.startswith("."):
            scan.other_files += 1
            continue
        label = parser(rel, genders) if genders is not None else parser(rel)
        if label is None:
            scan.unrecognised.append(rel)
        else:
            scan.rows.append((rel, label))
    if not scan.rows:
        seen = len(scan.unrecognised)
        raise DataError(
            f"{corpus_dir}: no file names follow the {corpus} naming convention "
            f"({seen} audio file{'s' if seen != 1 else ''} with extensions {', '.join(sorted(exts))} checked)"
        )
    return scan
