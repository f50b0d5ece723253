"""The answer rows that every output of a prediction is made of: ``predict``'s table, CSV and
JSON, the ``--plot`` timeline and ``serve``'s JSON endpoint all build them here, from the
``FileResult`` list of ``Predictor.analyse``, so they cannot disagree.

A row has ``result`` (an emotion, ``uncertain`` or ``no speech``), ``emotion``, ``confidence``,
``speech_s``, ``top`` / ``top_k``, ``probabilities`` (None for no speech), ``normalization``,
``voice_clips`` (how many other clips of the voice its normalisation knew: 0 for a lone file,
the least reliable case), ``speech_spans`` (``[start_s, end_s]`` of the speech the detector
found, in the file's seconds) and ``warning``; ``segment`` is ``all`` for a file's aggregate and ``START-END`` in seconds for
each of its segments.
"""

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
    ``Predictor.analyse`` for how it was normalised) wins over the ``uncertain_below`` given."""
    for r in results:
        if r.error:
            continue
        threshold = getattr(r, "uncertain_below", None)
        threshold = uncertain_below if threshold is None else threshold
        spans = [("all", None, sum(r.speech_s))]
        # Segments a long file was cut into for memory alone (no --segment) are not rows of their own.
        if len(r.segments) > 1 and not getattr(r, "auto_segmented", False):
            spans += [(f"{a:.2f}-{b:.2f}", k, v) for k, ((a, b), v) in enumerate(zip(r.segments, r.speech_s))]
        for segment, k, voiced in spans:
            row = {"file": r.path, "segment": segment, "normalization": r.normalization,
                   "voice_clips": getattr(r, "voice_clips", 0), "speech_s": round(voiced, 2),
                   "speech_spans": voiced_within(getattr(r, "speech_spans", []), None if k is None else r.segments[k]),
                   "warning": r.warning}
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
