"""``python -m ser evaluate``: score a model on a labelled folder (a built-in corpus's release
layout or a table), normalized by the speakers its names or table give. The command line
(``ser.app.cli``) only checks flags and prints; the scoring is here."""

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser.core.errors import SerError
from ser.core.schema import AUDIO_EXTENSIONS


def evaluation_scan(folder: Path, corpus: str | None, labels: str | None):
    """``(name, scan, where the speakers come from)`` for ``evaluate``: the folder read by a
    built-in corpus's parser (``--corpus``) or by a table (``--labels``, the manifest's reader;
    the corpus is then named after the folder)."""
    from ser.data.corpora import CORPUS_PARSERS, scan_corpus
    from ser.data.tables import scan_table

    if labels is None:
        if corpus not in CORPUS_PARSERS:
            raise SerError(f"--corpus: unknown corpus {corpus!r} (known: {', '.join(CORPUS_PARSERS)}; "
                           "any other corpus: describe it with --labels TABLE)")
        return corpus, scan_corpus(folder, corpus, AUDIO_EXTENSIONS), "the file names"
    table = Path(labels)
    if not table.is_file():
        # Command-line paths are relative to the current folder; the table is often in FOLDER.
        inside = folder / labels
        hint = f" (did you mean {inside}?)" if not table.is_absolute() and inside.is_file() else ""
        raise SerError(f"--labels: {table}: " + ("is a folder, not a table" if table.is_dir() else "no such file")
                       + hint)
    name = folder.resolve().name
    return name, scan_table(folder, table, name, AUDIO_EXTENSIONS), f"the speaker column of {table.name}"


@dataclass
class Evaluation:
    """What ``evaluate_folder`` found: the truth and the answers of the scored clips, the
    counts of what was not scored, and ``report`` (``ser.model.evaluation.report``)."""

    name: str
    y_true: np.ndarray
    y_pred: np.ndarray
    report: dict
    speakers: int
    failed: int
    silent: int
    dropped: int
    unrecognised: int
    unrecognised_note: str


def evaluate_folder(predictor, folder: Path, name: str, scan, progress: bool = True) -> Evaluation:
    """Score ``predictor`` on the clips of ``scan`` (``evaluation_scan``) whose labels are among
    its classes. Clips are normalized by speaker (or by corpus, under corpus normalization)."""
    from ser.model.evaluation import report

    classes = predictor.classes
    label_map = predictor.bundle.label_map
    paths, truth, speakers, dropped = [], [], [], 0
    for rel, clip in scan.rows:
        label = label_map.get(clip.emotion, clip.emotion)
        if label in classes:
            paths.append(folder / rel)
            truth.append(classes.index(label))
            speakers.append(clip.speaker)
        else:
            dropped += 1
    if not paths:
        raise SerError(f"{folder}: no clips with labels in the model's classes ({', '.join(classes)})")
    groups = [name] * len(paths) if predictor.bundle.normalization.mode == "corpus" else speakers
    results = predictor.analyse(paths, groups=groups, progress=progress)
    ok = [i for i, r in enumerate(results) if r.error is None and r.analysed]
    silent = sum(r.no_speech for r in results)
    for r in results:   # said before the report, and before the refusal when nothing could be scored
        if r.error or r.warning:
            print(f"error: {r.error}" if r.error else f"warning: {r.path}: {r.warning}", file=sys.stderr)
    if not ok:
        raise SerError(f"{folder}: none of the {len(results)} clips could be scored ({silent} without speech, "
                       f"{len(results) - silent} failed: errors above)")
    y_true = np.array([truth[i] for i in ok])
    y_pred = np.array([results[i].probabilities.mean(axis=0).argmax() for i in ok])
    return Evaluation(name, y_true, y_pred, report(y_true, y_pred, classes), len(set(speakers)),
                      failed=len(results) - len(ok) - silent, silent=silent, dropped=dropped,
                      unrecognised=len(scan.unrecognised), unrecognised_note=scan.unrecognised_note)


def report_lines(scored: Evaluation, folder: Path, mode: str, speaker_source: str) -> list[str]:
    """The report ``evaluate`` prints: counts, normalization, UA/WA/macro-F1 and a row per class."""
    out = scored.report
    lines = [f"{scored.name} at {folder}: {len(scored.y_true)} clips scored, {scored.failed} failed, "
             f"{scored.silent} without speech (not scored), {scored.dropped} with labels outside the model's "
             f"classes, {scored.unrecognised} {scored.unrecognised_note}",
             f"normalization: {mode} ({scored.speakers} speakers from {speaker_source})",
             f"UA {out['ua']:.3f}   WA {out['wa']:.3f}   macro-F1 {out['macro_f1']:.3f}",
             f"{'class':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    absent = [cls for cls, m in out["per_class"].items() if m["support"] == 0]
    for cls, m in out["per_class"].items():
        if m["support"]:   # a class the folder has no clips of has no recall: no row of zeros
            lines.append(f"{cls:<12}{m['precision']:>10.3f}{m['recall']:>10.3f}{m['f1']:>10.3f}{m['support']:>10d}")
    if absent:
        lines.append(f"no clips of {', '.join(absent)}: not in UA or macro-F1 (answers of those classes count as errors)")
    return lines
