"""The answer rows that every output of a prediction is made of: ``predict``'s table, CSV and
JSON, the ``--plot`` timeline and ``serve``'s JSON endpoint all build them here, from the
``FileResult`` list of ``Predictor.analyse``, so they cannot disagree.

A row has ``result`` (an emotion, ``uncertain`` or ``no speech``), ``emotion``, ``confidence``,
``speech_s``, ``top`` / ``top_k``, ``probabilities`` (None for no speech), ``normalization``,
``voice_clips`` (how many other clips of the voice its normalization knew: 0 for a lone file,
the least reliable case), ``speech_spans`` (``[start_s, end_s]`` of the speech the detector
found, in the file's seconds) and ``warning``; ``segment`` is ``all`` for a file's aggregate and ``START-END`` in seconds for
each of its segments.
"""

import csv
import json
import sys

import numpy as np

NO_SPEECH = "no speech"
UNCERTAIN = "uncertain"


def answer(probs, classes, uncertain_below: float) -> tuple[str, int]:
    """``(result, top class index)``: the emotion, or ``uncertain`` when the calibrated top
    probability is below ``uncertain_below``."""
    top = int(np.argmax(probs))
    return (classes[top] if probs[top] >= uncertain_below else UNCERTAIN), top


def rows(results, classes, top_k, uncertain_below=None):
    """One output row per file (aggregate over its segments with speech) and, when
    segmenting, per segment. A file or segment without enough speech is ``no speech``.
    Files that failed (``error``) have no row. Each result's own ``uncertain_below`` (set by
    ``Predictor.analyse`` for how it was normalized) wins over the ``uncertain_below`` given."""
    for r in results:
        if r.error:
            continue
        threshold = getattr(r, "uncertain_below", None)
        threshold = uncertain_below if threshold is None else threshold
        spans = [("all", None, sum(r.speech_s))]
        # Segments a long file was cut into for memory alone (no --segment) are not rows of their own.
        if len(r.segments) > 1 and not getattr(r, "auto_segmented", False):
            spans += [(f"{a:.2f}-{b:.2f}", k, v) for k, ((a, b), v) in enumerate(zip(r.segments, r.speech_s))]
        summary = time_summary(getattr(r, "summary_source", None) or r, classes, threshold)
        for segment, k, voiced in spans:
            row = {"file": r.path, "segment": segment, "normalization": r.normalization,
                   "voice_clips": getattr(r, "voice_clips", 0), "speech_s": round(voiced, 2),
                   "speech_spans": voiced_within(getattr(r, "speech_spans", []), None if k is None else r.segments[k]),
                   "warning": r.warning}
            if k is None and summary is not None:
                yield {**row, **summary, "top": [(classes[i], float(summary["probabilities"][classes[i]]))
                                                 for i in np.argsort([-summary["probabilities"][c] for c in classes])[:top_k]]}
                continue
            if k is None:
                probs = r.probabilities.mean(axis=0) if r.analysed else None
            else:
                probs = r.probabilities[r.analysed.index(k)] if k in r.analysed else None
            if probs is None:
                yield {**row, "result": NO_SPEECH, "emotion": None, "confidence": None, "top": [], "probabilities": None}
                continue
            result, top = answer(probs, classes, threshold)
            order = np.argsort(-probs)[:top_k]
            yield {**row, "result": result, "emotion": classes[top], "confidence": float(probs[top]),
                   "top": [(classes[i], float(probs[i])) for i in order],
                   "probabilities": {c: float(p) for c, p in zip(classes, probs)}}


def json_rows(results, classes, top_k: int, uncertain_below: float | None, segmented: bool) -> list[dict]:
    """What ``predict --format json`` prints (and ``serve``'s ``POST /api/predict`` answers):
    ``rows`` with ``top`` as ``top_k`` objects, and ``segment`` only when segmenting."""
    return [{**{k: v for k, v in row.items() if k != "top" and (segmented or k != "segment")},
             "top_k": [{"emotion": c, "probability": p} for c, p in row["top"]]}
            for row in rows(results, classes, top_k, uncertain_below)]


def time_summary(r, classes, uncertain_below: float) -> dict | None:
    """The answer for a whole recording analysed in segments: a summary of its speech time, not
    an average of probabilities (which reads "uncertain, neutral 22 %" for a mix of emotions).

    Each analysed segment's answer (an emotion, or ``uncertain``) counts for its seconds of
    speech: ``time_shares`` is each answer's share of the speech time, largest first; the
    ``result`` is the largest (``uncertain`` when most of the speech was not answered
    confidently), ``emotion`` the emotion with the largest share and ``confidence`` that share;
    ``strongest`` lists the
    three most confident segments; ``probabilities`` are the segments' probabilities weighted
    by their speech time. None for a file analysed as one clip, or without speech."""
    if len(r.segments) < 2 and getattr(r, "segmentation", None) != "speech" or not r.analysed:
        return None
    threshold = getattr(r, "uncertain_below", None)
    threshold = uncertain_below if threshold is None else threshold
    weights = np.array([r.speech_s[k] for k in r.analysed], float)
    answers = [answer(p, classes, threshold) for p in r.probabilities]
    shares = {}
    for (said, _), w in zip(answers, weights):
        shares[said] = shares.get(said, 0.0) + float(w)
    total = float(weights.sum()) or 1.0
    shares = {c: round(v / total, 4) for c, v in sorted(shares.items(), key=lambda kv: -kv[1])}
    emotions = [c for c in shares if c != UNCERTAIN]
    mean = (weights[:, None] * r.probabilities).sum(axis=0) / total
    confident = sorted(((float(p[top]), k, classes[top]) for (said, top), p, k in zip(answers, r.probabilities, r.analysed)
                        if said != UNCERTAIN), reverse=True)[:3]
    emotion = emotions[0] if emotions else classes[int(np.argmax(mean))]
    return {"result": next(iter(shares)),   # the largest share: an emotion, or uncertain
            "emotion": emotion,
            "confidence": shares.get(emotion, 0.0),
            "probabilities": {c: float(v) for c, v in zip(classes, mean)},
            "time_shares": shares,
            "strongest": [{"segment": f"{r.segments[k][0]:.2f}-{r.segments[k][1]:.2f}", "emotion": c, "confidence": p}
                          for p, k, c in confident]}


def voiced_within(spans, window=None) -> list[list[float]]:
    """The voiced ``[start_s, end_s]`` spans of a file (``FileResult.speech_spans``) that fall
    in ``window`` (a segment's ``(start_s, end_s)``; the whole file when None), cut to it."""
    low, high = window if window is not None else (-np.inf, np.inf)
    return [[max(a, low), min(b, high)] for a, b in spans if b > low and a < high]


def segment_span(segment: str) -> tuple[float, float]:
    """``(start_s, end_s)`` of a row's ``segment`` (``"2.00-4.00"``)."""
    start, _, end = segment.partition("-")
    return float(start), float(end)


LONE_CLIP_ADVICE = ("one clip of an unknown voice is the least reliable case: adding 3 or more clips of the same "
                    "voice (any emotion) as a reference helps")


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A CSV cell a spreadsheet shows as text: one starting like a formula (``=``, ``+``, ``-``,
    ``@``, tab, CR) gets a leading ``'`` (OWASP's CSV-injection rule). Numbers are written by
    the caller, never through here."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def shown_name(name: str) -> str:
    """A file name as one line of a table: control characters (a newline would forge a row)
    escaped as Python writes them."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(name))


def write_csv_rows(table, classes, segmented: bool, out) -> None:
    """``predict --format csv``: a header and one line per answer row (``ser.app.rows.rows``, or
    the JSON rows ``serve`` answered, which hold the same fields). Failed files (``error``
    rows) have no line, as in ``predict``'s CSV; their error went to stderr."""
    writer = csv.writer(out)
    writer.writerow(["file"] + (["segment"] if segmented else []) + ["result", "emotion", "confidence", "speech_s"]
                    + [f"p_{c}" for c in classes] + ["normalization", "voice_clips", "warning"])
    for row in table:
        if row.get("error"):
            continue
        probs = row["probabilities"]
        writer.writerow([csv_cell(row["file"])] + ([row["segment"]] if segmented else [])
                        + [row["result"], row["emotion"] or "",
                           "" if row["confidence"] is None else f"{row['confidence']:.4f}", f"{row['speech_s']:.2f}"]
                        + [f"{probs[c]:.6f}" if probs else "" for c in classes]
                        + [csv_cell(row["normalization"]), row["voice_clips"], csv_cell(row["warning"] or "")])


def print_results(results, classes, fmt: str, top_k: int, segmented: bool, uncertain_below: float, out=None):
    """Write the results as a table, CSV or JSON to ``out`` (stdout as it is at the call).
    ``result`` is the emotion, ``uncertain`` (the top-k still listed) or ``no speech`` (no
    emotion, no probabilities)."""
    out = out or sys.stdout
    if fmt == "json":
        json.dump(json_rows(results, classes, top_k, uncertain_below, segmented), out, indent=2)
        out.write("\n")
        return
    table = list(rows(results, classes, top_k, uncertain_below))
    if fmt == "csv":
        write_csv_rows(table, classes, segmented, out)
    else:
        for line in dict.fromkeys(r.normalization for r in results if r.error is None and r.normalization):
            out.write(f"normalization: {line}\n")
        table = [{**row, "file": shown_name(row["file"])} for row in table]
        width = max([len("file")] + [len(r["file"]) for r in table])
        out.write(f"{'file':<{width}}  " + (f"{'segment':>11}  " if segmented else "")
                  + f"{'result':<10} {'confidence':>10}   top\n")
        for row in table:
            if row["result"] == NO_SPEECH:
                tail = f"{'-':>10}   ({row['speech_s']:.2f} s of speech)"
            elif row.get("time_shares"):   # a recording in segments: its speech time, not probabilities
                tail = f"{row['confidence']:>10.3f}   " + "  ".join(
                    f"{c} {share:.0%}" for c, share in row["time_shares"].items()) + " of the speech"
            else:
                tail = f"{row['confidence']:>10.3f}   " + "  ".join(f"{c} {p:.2f}" for c, p in row["top"])
            out.write(f"{row['file']:<{width}}  " + (f"{row['segment']:>11}  " if segmented else "")
                      + f"{row['result']:<10} {tail}\n")
