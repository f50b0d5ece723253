"""Command line: ``python -m ser predict PATH...`` and ``python -m ser evaluate FOLDER``.

Errors are one line each; the exit status is non-zero when any input failed.
"""

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

from .errors import SerError

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".aiff", ".aif")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line naming the flag, not a usage dump."""

    def error(self, message):
        self.exit(2, f"error: {message} (see `python -m ser {self.prog.split()[-1]} --help`)\n")


def collect_inputs(paths) -> tuple[list[Path], list[str]]:
    """Files to analyse (folders searched recursively for audio extensions) and errors for
    paths that do not exist or folders without audio."""
    files, errors = [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
            if not found:
                errors.append(f"{path}: folder has no audio files ({', '.join(AUDIO_EXTENSIONS)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            errors.append(f"{path}: no such file or folder")
    return files, errors


def _rows(results, classes, top_k):
    """One output row per file (aggregate) and per segment when segmenting."""
    for r in results:
        if r.error:
            continue
        mean = r.probabilities.mean(axis=0)
        segments = [("all", mean)] if len(r.segments) == 1 else [("all", mean)] + [
            (f"{a:.2f}-{b:.2f}", p) for (a, b), p in zip(r.segments, r.probabilities)]
        for segment, probs in segments:
            order = np.argsort(-probs)[:top_k]
            yield {"file": r.path, "segment": segment, "normalization": r.normalization, "emotion": classes[order[0]],
                   "confidence": float(probs[order[0]]),
                   "top": [(classes[i], float(probs[i])) for i in order],
                   "probabilities": {c: float(p) for c, p in zip(classes, probs)}}


def print_results(results, classes, fmt: str, top_k: int, segmented: bool, out=sys.stdout):
    rows = list(_rows(results, classes, top_k))
    if fmt == "json":
        json.dump([{**{k: v for k, v in row.items() if k != "top" and (segmented or k != "segment")},
                    "top_k": [{"emotion": c, "probability": p} for c, p in row["top"]]} for row in rows],
                  out, indent=2)
        out.write("\n")
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(["file"] + (["segment"] if segmented else []) + ["emotion", "confidence"]
                        + [f"p_{c}" for c in classes] + ["normalization"])
        for row in rows:
            writer.writerow([row["file"]] + ([row["segment"]] if segmented else []) + [row["emotion"],
                            f"{row['confidence']:.4f}"] + [f"{row['probabilities'][c]:.6f}" for c in classes]
                            + [row["normalization"]])
    else:
        for line in dict.fromkeys(r.normalization for r in results if r.error is None):
            out.write(f"normalization: {line}\n")
        width = max([len("file")] + [len(r["file"]) for r in rows])
        head = f"{'file':<{width}}  " + (f"{'segment':>11}  " if segmented else "") + "emotion    confidence"
        out.write(head + ("   next" if top_k > 1 else "") + "\n")
        for row in rows:
            extra = "  ".join(f"{c} {p:.2f}" for c, p in row["top"][1:])
            out.write(f"{row['file']:<{width}}  " + (f"{row['segment']:>11}  " if segmented else "")
                      + f"{row['emotion']:<10} {row['confidence']:>10.3f}" + (f"   {extra}" if extra else "") + "\n")


def cmd_predict(args) -> int:
    from .predict import Predictor

    files, errors = collect_inputs(args.paths)
    predictor = Predictor(args.model, backend=args.backend) if files else None
    results = (predictor.analyse(files, segment_s=args.segment, grouping=args.speaker, progress=not args.quiet)
               if files else [])
    errors += [r.error for r in results if r.error]
    if predictor is not None:
        print_results(results, predictor.classes, args.format, min(args.top_k, len(predictor.classes)),
                      segmented=bool(args.segment))
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    ok = sum(r.error is None for r in results)
    if errors:
        print(f"predict: {ok} file{'s' if ok != 1 else ''} labelled, {len(errors)} failed", file=sys.stderr)
        return 1
    return 0


def cmd_evaluate(args) -> int:
    from .corpora import CORPUS_PARSERS, scan_corpus
    from .evaluation import report
    from .plots import save_confusion_png
    from .predict import Predictor

    folder = Path(args.folder)
    if not folder.is_dir():
        raise SerError(f"{folder}: no such folder")
    if args.corpus not in CORPUS_PARSERS:
        raise SerError(f"--corpus: unknown corpus {args.corpus!r} (known: {', '.join(CORPUS_PARSERS)})")
    if args.json and Path(args.json).is_dir():
        raise SerError(f"--json: {args.json} is a folder; give a file name such as {Path(args.json) / 'metrics.json'}")
    predictor = Predictor(args.model, backend=args.backend)
    classes = predictor.classes
    label_map = predictor.bundle["label_map"]
    scan = scan_corpus(folder, args.corpus, AUDIO_EXTENSIONS)
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
    # Normalise by the speakers that the corpus's file names give (speaker mode), or by the corpus.
    groups = [args.corpus] * len(paths) if predictor.bundle["normalize"]["mode"] == "corpus" else speakers
    results = predictor.analyse(paths, groups=groups, progress=not args.quiet)
    ok = [i for i, r in enumerate(results) if r.error is None]
    for r in results:
        if r.error:
            print(f"error: {r.error}", file=sys.stderr)
    if not ok:
        raise SerError(f"{folder}: every one of the {len(results)} clips failed (errors above); nothing to score")
    y_true = np.array([truth[i] for i in ok])
    y_pred = np.array([results[i].probabilities.mean(axis=0).argmax() for i in ok])
    out = report(y_true, y_pred, classes)
    print(f"{args.corpus} at {folder}: {len(ok)} clips scored, {len(results) - len(ok)} failed, "
          f"{dropped} with labels outside the model's classes, {len(scan.unrecognised)} unrecognised names")
    print(f"normalization: {predictor.bundle['normalize']['mode']} "
          f"({len(set(speakers))} speakers from the file names)")
    print(f"UA {out['ua']:.3f}   WA {out['wa']:.3f}   macro-F1 {out['macro_f1']:.3f}")
    print(f"{'class':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name, m in out["per_class"].items():
        print(f"{name:<12}{m['precision']:>10.3f}{m['recall']:>10.3f}{m['f1']:>10.3f}{m['support']:>10d}")
    if args.confusion:
        target = Path(args.confusion)
        target = target.with_suffix(".png") if target.suffix.lower() != ".png" else target
        save_confusion_png(target, y_true, y_pred, classes, f"{args.corpus}: {folder.name}")
        print(f"confusion matrix: {target}")
    if args.json:
        from .io import write_json
        write_json(args.json, {"corpus": args.corpus, "folder": str(folder), "failed": len(results) - len(ok), **out})
    return 1 if len(ok) < len(results) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m ser", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    p = sub.add_parser("predict", help="label audio files or folders with a trained model")
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders (searched recursively)")
    p.add_argument("--model", default="models", help="model bundle folder (default: models)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--top-k", type=int, default=1, metavar="K", help="show the K most likely emotions")
    p.add_argument("--segment", type=float, metavar="SECONDS",
                   help="predict every SECONDS-long segment and aggregate (long recordings)")
    p.add_argument("--backend", choices=["auto", "onnx", "keras"], default="auto",
                   help="auto: the exported ONNX model when present, else Keras")
    p.add_argument("--speaker", choices=["folder", "all", "file"], default="folder",
                   help="which inputs share a voice, for speaker normalisation: every file in a folder "
                        "(default), all inputs, or each file alone (its segments together)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_predict)

    e = sub.add_parser("evaluate", help="score a model on a folder laid out like a supported corpus")
    e.add_argument("folder", help="corpus folder in its release layout")
    e.add_argument("--corpus", required=True, help="naming convention: ravdess_speech, tess, savee, ...")
    e.add_argument("--model", default="models")
    e.add_argument("--backend", choices=["auto", "onnx", "keras"], default="auto")
    e.add_argument("--confusion", metavar="PNG", help="also write the confusion matrix as this PNG file")
    e.add_argument("--json", help="also write the metrics as JSON here")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_evaluate)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "top_k", 1) < 1:
        print("error: argument --top-k: must be >= 1", file=sys.stderr)
        return 2
    if getattr(args, "segment", None) is not None and not (math.isfinite(args.segment) and args.segment > 0):
        print(f"error: argument --segment: must be a finite number of seconds > 0 (got {args.segment})", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except SerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
