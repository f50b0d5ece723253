"""Build the clip manifest: parse corpora, map labels, probe files, count every exclusion."""

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from . import audio
from .corpora import printable_path, parser_options, scan_corpus
from .errors import DataError
from .parallel import pmap

MANIFEST_COLUMNS = ["path", "corpus", "speaker", "gender", "emotion", "corpus_label", "language"]
EXCLUDED_COLUMNS = ["path", "corpus", "stage", "reason"]
UNRECOGNISED = "file name does not follow the corpus naming convention"


def map_label(corpus_label: str, mapping: dict, classes) -> str | None:
    """Unified emotion for a corpus label (via ``labels.map``), or None if outside ``classes``."""
    label = mapping.get(corpus_label, corpus_label)
    return label if label in classes else None


def file_accounting(part: dict) -> int:
    """Sum of the per-corpus categories that together hold every file found under the corpus folder."""
    return sum(part[k] for k in ("clips", "duplicates", "excluded", "dropped_labels", "not_sampled", "other_files"))


def build_manifest(raw_dir: Path, params: dict, log=print):
    """Return ``(manifest, excluded, stats)`` for every configured corpus present in ``raw_dir``.

    Absent corpora are skipped with a message. Every file under ``raw_dir/<corpus>`` ends up in
    exactly one place, counted per corpus in ``stats["per_corpus"]`` (``files`` is their sum):
    a manifest row (``clips``); ``duplicates``, further copies of a recording already in a row
    (e.g. CREMA-D's MP3s), listed in ``stats["duplicates"]``; ``excluded``, rows of ``excluded``
    with a reason (names that do not parse, clips a parser rejects such as ASVP-ESD non-speech,
    files that are empty or not audio); ``dropped_labels``, labels outside ``labels.classes``;
    ``not_sampled``, clips left out by ``manifest.max_files_per_corpus``; ``other_files``, files
    without an audio extension (transcripts, spreadsheets).
    """
    labels = params["labels"]
    cfg = params["manifest"]
    rows, excluded = [], []
    stats = {"corpora_found": [], "corpora_skipped": [], "files_other_ignored": 0,
             "dropped_labels": {}, "duplicates": {}, "per_corpus": {}}
    accounts = {}
    for corpus in cfg["corpora"]:
        corpus_dir = raw_dir / corpus
        if not corpus_dir.is_dir():
            log(f"manifest: {corpus}: not in {raw_dir}, skipped")
            stats["corpora_skipped"].append(corpus)
            continue
        scan = scan_corpus(corpus_dir, corpus, cfg["extensions"], parser_options(corpus, corpus_dir, cfg))
        stats["corpora_found"].append(corpus)
        stats["files_other_ignored"] += scan.other_files
        for rel in scan.unrecognised:
            excluded.append({"path": str(corpus_dir / rel), "corpus": corpus, "stage": "manifest",
                             "reason": UNRECOGNISED})
        for rel, reason in scan.rejected:
            excluded.append({"path": printable_path(corpus_dir / rel), "corpus": corpus, "stage": "manifest",
                             "reason": reason})
        if scan.duplicates:
            stats["duplicates"][corpus] = duplicate_summary(scan.duplicates)
        dropped = Counter()
        kept = []
        for rel, clip in scan.rows:
            emotion = map_label(clip.emotion, labels["map"], labels["classes"])
            if emotion is None:
                dropped[clip.emotion] += 1
                continue
            kept.append({"path": str(corpus_dir / rel), "corpus": corpus, "speaker": clip.speaker,
                         "gender": clip.gender, "emotion": emotion, "corpus_label": clip.emotion,
                         "language": clip.language})
        labelled = len(kept)
        if cfg["max_files_per_corpus"] and len(kept) > cfg["max_files_per_corpus"]:
            # A seeded slice (the end-to-end test uses it); sorted afterwards so order stays stable.
            rng = np.random.default_rng(params["seed"])
            pick = sorted(rng.choice(len(kept), cfg["max_files_per_corpus"], replace=False))
            kept = [kept[i] for i in pick]
        if dropped:
            stats["dropped_labels"][corpus] = dict(sorted(dropped.items()))
        accounts[corpus] = {"files": scan.files, "duplicates": len(scan.duplicates),
                            "not_sampled": labelled - len(kept), "other_files": scan.other_files}
        log(f"manifest: {corpus}: {len(kept)} clips, {len(scan.duplicates)} duplicate copies, "
            f"{len(scan.rejected)} rejected, {len(scan.unrecognised)} unrecognised names, "
            f"{sum(dropped.values())} dropped labels {dict(dropped) if dropped else ''}".rstrip())
        rows.extend(kept)
    if not stats["corpora_found"]:
        raise DataError(f"{raw_dir}: none of the corpora in manifest.corpora is present "
                        f"({', '.join(cfg['corpora'])}); run `dvc pull`")

    reasons = pmap(audio.probe, [r["path"] for r in rows], desc="probe")
    good = []
    for row, reason in zip(rows, reasons):
        if reason is None:
            good.append(row)
        else:
            excluded.append({"path": row["path"], "corpus": row["corpus"], "stage": "manifest", "reason": reason})
    manifest = pd.DataFrame(good, columns=MANIFEST_COLUMNS)
    excluded = pd.DataFrame(excluded, columns=EXCLUDED_COLUMNS)
    for corpus in stats["corpora_found"]:
        part = manifest[manifest.corpus == corpus]
        gone = excluded[excluded.corpus == corpus]
        stats["per_corpus"][corpus] = {
            "clips": int(len(part)),
            "speakers": int(part.speaker.nunique()),
            "excluded": int(len(gone)),
            "dropped_labels": int(sum(stats["dropped_labels"].get(corpus, {}).values())),
            **accounts[corpus],
            "excluded_reasons": {k: int(v) for k, v in gone.reason.value_counts().sort_index().items()},
            "languages": {k: int(v) for k, v in part.language.value_counts().sort_index().items()},
        }
        if file_accounting(stats["per_corpus"][corpus]) != stats["per_corpus"][corpus]["files"]:
            raise AssertionError(f"manifest: {corpus}: file counts do not add up ({stats['per_corpus'][corpus]})")
    stats["clips"] = int(len(manifest))
    stats["excluded"] = int(len(excluded))
    stats["per_emotion"] = {k: int(v) for k, v in manifest.emotion.value_counts().sort_index().items()}
    return manifest, excluded, stats


def duplicate_summary(duplicates) -> dict:
    """Count skipped copies by (skipped folder, skipped format) -> kept folder, e.g. ``AudioMP3 (.mp3) -> AudioWAV``."""
    summary = Counter(f"{skipped.parent.as_posix()} ({skipped.suffix.lower()}) -> {kept.parent.as_posix()}"
                      for skipped, kept in duplicates)
    return dict(sorted(summary.items()))
