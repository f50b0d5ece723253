"""Build the clip manifest: parse corpora, map labels, probe files, count every exclusion."""

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from . import audio
from .corpora import scan_corpus
from .errors import DataError
from .parallel import pmap

MANIFEST_COLUMNS = ["path", "corpus", "speaker", "gender", "emotion", "corpus_label"]
EXCLUDED_COLUMNS = ["path", "corpus", "stage", "reason"]


def map_label(corpus_label: str, mapping: dict, classes) -> str | None:
    """Unified emotion for a corpus label (via ``labels.map``), or None if outside ``classes``."""
    label = mapping.get(corpus_label, corpus_label)
    return label if label in classes else None


def build_manifest(raw_dir: Path, params: dict, log=print):
    """Return ``(manifest, excluded, stats)`` for every configured corpus present in ``raw_dir``.

    Absent corpora are skipped with a message; files whose names do not parse, or that are
    empty or not audio, go to ``excluded`` with a reason; labels outside ``labels.classes`` are
    dropped and counted in ``stats``.
    """
    labels = params["labels"]
    cfg = params["manifest"]
    rows, excluded = [], []
    stats = {"corpora_found": [], "corpora_skipped": [], "files_other_ignored": 0,
             "dropped_labels": {}, "per_corpus": {}}
    for corpus in cfg["corpora"]:
        corpus_dir = raw_dir / corpus
        if not corpus_dir.is_dir():
            log(f"manifest: {corpus}: not in {raw_dir}, skipped")
            stats["corpora_skipped"].append(corpus)
            continue
        scan = scan_corpus(corpus_dir, corpus, cfg["extensions"])
        stats["corpora_found"].append(corpus)
        stats["files_other_ignored"] += scan.other_files
        for rel in scan.unrecognised:
            excluded.append({"path": str(corpus_dir / rel), "corpus": corpus, "stage": "manifest",
                             "reason": "file name does not follow the corpus naming convention"})
        dropped = Counter()
        kept = []
        for rel, clip in scan.rows:
            emotion = map_label(clip.emotion, labels["map"], labels["classes"])
            if emotion is None:
                dropped[clip.emotion] += 1
                continue
            kept.append({"path": str(corpus_dir / rel), "corpus": corpus, "speaker": clip.speaker,
                         "gender": clip.gender, "emotion": emotion, "corpus_label": clip.emotion})
        if cfg["max_files_per_corpus"] and len(kept) > cfg["max_files_per_corpus"]:
            # A seeded slice (the end-to-end test uses it); sorted afterwards so order stays stable.
            rng = np.random.default_rng(params["seed"])
            pick = sorted(rng.choice(len(kept), cfg["max_files_per_corpus"], replace=False))
            kept = [kept[i] for i in pick]
        if dropped:
            stats["dropped_labels"][corpus] = dict(sorted(dropped.items()))
        log(f"manifest: {corpus}: {len(kept)} clips, {len(scan.unrecognised)} unrecognised names, "
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
        stats["per_corpus"][corpus] = {
            "clips": int(len(part)),
            "speakers": int(part.speaker.nunique()),
            "excluded": int((excluded.corpus == corpus).sum()),
            "dropped_labels": int(sum(stats["dropped_labels"].get(corpus, {}).values())),
        }
    stats["clips"] = int(len(manifest))
    stats["excluded"] = int(len(excluded))
    stats["per_emotion"] = {k: int(v) for k, v in manifest.emotion.value_counts().sort_index().items()}
    return manifest, excluded, stats
