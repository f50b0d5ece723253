"""Build the clip manifest: parse corpora, map labels, probe files, count every exclusion."""

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from ser.audio import decode
from ser.core.errors import DataError
from ser.core.parallel import pmap
from ser.data.corpora import parser_options, printable_path, scan_corpus
from ser.core.schema import DEFAULT_TABLE
from ser.data.tables import scan_table

MANIFEST_COLUMNS = ["path", "corpus", "speaker", "gender", "emotion", "corpus_label", "language"]
EXCLUDED_COLUMNS = ["path", "corpus", "stage", "reason"]


def map_label(corpus_label: str, mapping: dict, classes) -> str | None:
    """Unified emotion for a corpus label (via ``labels.map``), or None if outside ``classes``."""
    label = mapping.get(corpus_label, corpus_label)
    return label if label in classes else None


def file_accounting(part: dict) -> int:
    """Sum of the per-corpus categories that together hold every file found under the corpus folder."""
    return sum(part[k] for k in ("clips", "duplicates", "content_duplicates", "excluded", "dropped_labels",
                                 "not_sampled", "other_files"))


def pcm_digest(path) -> str | None:
    """sha256 of the decoded audio as 16-bit PCM at the file's own rate, with that rate and the
    channel count: the same samples give the same digest in any lossless container (a FLAC and
    a WAV of one recording match), whatever the file is called. None when libsndfile cannot
    decode the file (the prepare stage reports why)."""
    try:
        pcm, rate = sf.read(str(path), dtype="int16", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError):
        return None
    digest = hashlib.sha256(f"{rate} {pcm.shape[1]}\n".encode())
    digest.update(pcm.astype("<i2", copy=False).tobytes())
    return digest.hexdigest()


def inspect_clip(path) -> tuple[str | None, str | None]:
    """``(reason, None)`` for a file ``decode.probe`` rejects, else ``(None, pcm_digest)``: one pass
    over the files, in the workers, for both."""
    reason = decode.probe(path)
    return (reason, None) if reason else (None, pcm_digest(path))


def content_duplicates(paths, emotions, digests) -> tuple[dict, dict]:
    """Sort files that decode to the same audio: ``(copies, conflicts)``.

    ``copies`` maps the index of every further copy of a recording whose copies all share one
    emotion to the index of the copy kept, the first in path order. ``conflicts`` maps the index
    of every copy in a group whose emotions disagree to the indices of the other copies: no copy
    can be trusted, so all go. A ``None`` digest (undecodable) matches nothing.
    """
    groups = {}
    for i, digest in enumerate(digests):
        if digest is not None:
            groups.setdefault(digest, []).append(i)
    copies, conflicts = {}, {}
    for members in groups.values():
        if len(members) < 2:
            continue
        members = sorted(members, key=lambda i: paths[i])
        if len({emotions[i] for i in members}) == 1:
            copies.update({i: members[0] for i in members[1:]})
        else:
            conflicts.update({i: [j for j in members if j != i] for i in members})
    return copies, conflicts


def conflict_reason(others: list[tuple[str, str]], emotion: str) -> str:
    """Exclusion reason for a copy labelled ``emotion`` whose audio is also at ``others`` (path, emotion)."""
    listed = ", ".join(f"{path} ({other})" for path, other in others)
    return f"same audio as {listed}, labelled {emotion} here: conflicting labels, every copy excluded"


def scan_configured(raw_dir: Path, corpus: str, cfg: dict):
    """Scan ``raw_dir/<corpus>`` the way ``manifest`` params say: by its table when
    ``manifest.tables`` names it (a built-in name too: the table then replaces the parser),
    else by its parser."""
    corpus_dir = raw_dir / corpus
    if corpus not in cfg["tables"]:
        return scan_corpus(corpus_dir, corpus, cfg["extensions"], parser_options(corpus, corpus_dir, cfg))
    table = corpus_dir / (cfg["tables"][corpus] or DEFAULT_TABLE)
    if not table.is_file():
        raise DataError(f"{table}: not found (manifest.tables.{corpus} says this table describes {corpus})")
    return scan_table(corpus_dir, table, corpus, cfg["extensions"])


def build_manifest(raw_dir: Path, params: dict, log=print):
    """Return ``(manifest, excluded, stats)`` for every configured corpus present in ``raw_dir``.

    Absent corpora are skipped with a message. A corpus in ``manifest.tables`` is read from its
    table (``ser.data.tables``), any other by its parser; a malformed table raises ``DataError`` before
    any file is probed. Every file under ``raw_dir/<corpus>`` ends up in exactly one place,
    counted per corpus in ``stats["per_corpus"]`` (``files`` is their sum): a manifest row
    (``clips``); ``duplicates``, further copies of a recording already in a row (e.g. CREMA-D's
    MP3s), listed in ``stats["duplicates"]``; ``excluded``, rows of ``excluded`` with a reason
    (names that do not parse or that a table does not list, clips a parser rejects such as
    ASVP-ESD non-speech, files that are empty or not audio); ``dropped_labels``, labels outside
    ``labels.classes``; ``not_sampled``, clips left out by ``manifest.max_files_per_corpus``;
    ``other_files``, files without an audio extension (transcripts, spreadsheets, a corpus's
    table); ``content_duplicates``, further files that decode to the same audio as a kept row
    with the same emotion (any name, any corpus), listed in ``stats["content_duplicates"]``.
    Files with the same audio and different emotions are all excluded, each naming the others
    (counted as ``conflicting_excluded`` in ``stats["content_duplicates"]``).
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
        scan = scan_configured(raw_dir, corpus, cfg)
        stats["corpora_found"].append(corpus)
        stats["files_other_ignored"] += scan.other_files
        for rel in scan.unrecognised:
            excluded.append({"path": str(corpus_dir / rel), "corpus": corpus, "stage": "manifest",
                             "reason": scan.unrecognised_reason})
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
            f"{len(scan.rejected)} rejected, {len(scan.unrecognised)} {scan.unrecognised_note}, "
            f"{sum(dropped.values())} dropped labels {dict(dropped) if dropped else ''}".rstrip())
        rows.extend(kept)
    if not stats["corpora_found"]:
        raise DataError(f"{raw_dir}: none of the corpora in manifest.corpora is present "
                        f"({', '.join(cfg['corpora'])}); run `dvc pull`")

    inspected = pmap(inspect_clip, [r["path"] for r in rows], desc="probe+hash")
    good, digests = [], []
    for row, (reason, digest) in zip(rows, inspected):
        if reason is None:
            good.append(row)
            digests.append(digest)
        else:
            excluded.append({"path": row["path"], "corpus": row["corpus"], "stage": "manifest", "reason": reason})
    good, conflicting, skipped = resolve_content_duplicates(good, digests)
    excluded.extend(conflicting)
    stats["content_duplicates"] = {"copies_skipped": len(skipped), "conflicting_excluded": len(conflicting),
                                   "skipped": {row["path"]: kept["path"] for row, kept in skipped}}
    skipped_in = Counter(row["corpus"] for row, _ in skipped)
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
            "content_duplicates": int(skipped_in[corpus]),
            "excluded_reasons": {k: int(v) for k, v in gone.reason.value_counts().sort_index().items()},
            "languages": {k: int(v) for k, v in part.language.value_counts().sort_index().items()},
        }
        if file_accounting(stats["per_corpus"][corpus]) != stats["per_corpus"][corpus]["files"]:
            raise AssertionError(f"manifest: {corpus}: file counts do not add up ({stats['per_corpus'][corpus]})")
    stats["clips"] = int(len(manifest))
    stats["excluded"] = int(len(excluded))
    stats["per_emotion"] = {k: int(v) for k, v in manifest.emotion.value_counts().sort_index().items()}
    return manifest, excluded, stats


def resolve_content_duplicates(rows: list[dict], digests: list) -> tuple[list, list, list]:
    """Apply ``content_duplicates`` to manifest rows (``digests`` in step with them):
    ``(rows kept, excluded rows naming the other copies, [(skipped row, kept row)])``."""
    paths = [r["path"] for r in rows]
    copies, conflicts = content_duplicates(paths, [r["emotion"] for r in rows], digests)
    excluded = [{"path": rows[i]["path"], "corpus": rows[i]["corpus"], "stage": "manifest",
                 "reason": conflict_reason([(paths[j], rows[j]["emotion"]) for j in others], rows[i]["emotion"])}
                for i, others in sorted(conflicts.items())]
    skipped = [(rows[i], rows[kept]) for i, kept in sorted(copies.items())]
    kept = [row for i, row in enumerate(rows) if i not in copies and i not in conflicts]
    return kept, excluded, skipped


def duplicate_summary(duplicates) -> dict:
    """Count skipped copies by (skipped folder, skipped format) -> kept folder, e.g. ``AudioMP3 (.mp3) -> AudioWAV``."""
    summary = Counter(f"{skipped.parent.as_posix()} ({skipped.suffix.lower()}) -> {kept.parent.as_posix()}"
                      for skipped, kept in duplicates)
    return dict(sorted(summary.items()))
