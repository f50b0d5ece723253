"""Command line: ``python -m ser predict PATH...``, ``python -m ser evaluate FOLDER --corpus NAME |
--labels TABLE`` and ``python -m ser serve``.

Errors are one line each; the exit status is non-zero when any input failed.
"""

import argparse
import math
import os
import sys
from collections import Counter
from pathlib import Path

from ser.app.rows import LONE_CLIP_ADVICE, json_rows, print_results
from ser.core.errors import SerError, signals_as_interrupts
from ser.core.schema import AUDIO_EXTENSIONS


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line naming the flag, not a usage dump."""

    def error(self, message):
        command = self.prog.removeprefix("python -m ser").strip()   # "" for the top-level parser
        usage = f"python -m ser {command} --help" if command else "python -m ser --help"
        self.exit(2, f"error: {message} (see `{usage}`)\n")


def collect_inputs(paths) -> tuple[list[Path], list[str], list[Path]]:
    """Files to analyse (folders searched recursively for audio extensions), errors for paths
    that do not exist, folders without audio and subfolders that cannot be read, and the files
    passed over in folders for their extension (e.g. ``.m4a``, ``.txt``), to be named."""
    files, errors, passed_over = [], [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = []
            unreadable = lambda err: errors.append(f"{err.filename}: folder cannot be read ({err.strerror})")  # noqa: E731
            for folder, dirs, names in os.walk(path, onerror=unreadable):
                dirs.sort()
                for name in sorted(names):
                    file = Path(folder) / name
                    (found if file.suffix.lower() in AUDIO_EXTENSIONS else passed_over).append(file)
            if not found and not any(e.startswith(str(path)) for e in errors):
                errors.append(f"{path}: folder has no audio files ({', '.join(AUDIO_EXTENSIONS)})")
            files.extend(sorted(found))
        elif path.is_file():
            files.append(path)
        else:
            errors.append(f"{path}: no such file or folder")
    return files, errors, passed_over


def passed_over_note(files, shown: int = 5) -> str:
    """One line counting and naming the files a folder search passed over, by extension."""
    by_ext = Counter(f.suffix.lower() or "(none)" for f in files)
    names = ", ".join(str(f) for f in files[:shown]) + (", ..." if len(files) > shown else "")
    kinds = ", ".join(f"{n} {ext}" for ext, n in sorted(by_ext.items()))
    return (f"note: {len(files)} file{'s' if len(files) != 1 else ''} skipped, not audio by extension "
            f"({kinds}; audio: {', '.join(AUDIO_EXTENSIONS)}): {names}")


PLOT_FORMATS = (".png", ".svg", ".pdf")
MAX_SEGMENT_S = 86400.0   # a day: longer segments are one segment anyway, and overflow sample counts


def segment_arg(text: str):
    """``--segment``: ``speech``, or a number of seconds (checked in ``main``: argparse's own
    message for a bad type is not one line with the range)."""
    from ser.app.analysis import SPEECH

    if text.strip().lower() == SPEECH:
        return SPEECH
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'speech' or a number of seconds (got {text!r})") from None


def plot_target(path, segment_s, files) -> Path:
    """The ``--plot`` file, checked before any work: one input file, ``--segment`` given (the
    timeline's step) and a writable PNG, SVG or PDF name; ``SerError`` otherwise."""
    if not segment_s:
        raise SerError("--plot: give --segment too (speech, or the timeline's step in seconds, e.g. --segment 2)")
    if len(files) != 1:
        raise SerError(f"--plot: draws the timeline of one recording, got {len(files)} files")
    if Path(path).suffix.lower() not in PLOT_FORMATS:
        raise SerError(f"--plot: {path}: name a {', '.join(PLOT_FORMATS)} file")
    return check_writable(path, "--plot")


def save_timeline(path: Path, result, predictor, top_k: int) -> None:
    """Draw ``result``'s timeline from the rows ``--format json`` prints (matplotlib is
    imported here only: a plain ``predict`` never pays for it)."""
    from ser.app.timeline import envelope, save_timeline_png

    file_rows = json_rows([result], predictor.classes, top_k, predictor.bundle.uncertain_below,
                          segmented=True)
    wave = envelope(result.path, predictor.bundle.sample_rate)
    try:
        save_timeline_png(path, file_rows, predictor.classes, wave)
    except OSError as err:
        raise SerError(f"--plot: {path}: cannot write ({err.strerror or err})") from None


def reference_files(paths, targets) -> list[Path]:
    """The ``--reference`` files (folders searched as for targets), checked before any work:
    ``SerError`` in one line for a path that does not exist, a folder without audio, a file
    whose bytes are those of a target (a clip is never normalized with itself) or of another
    reference (it would count twice), as ``serve`` checks its uploads."""
    files, errors, passed_over = collect_inputs(paths)
    if errors:
        raise SerError(f"--reference {errors[0]}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
    if passed_over:
        print(passed_over_note(passed_over).replace("note:", "note: --reference:", 1), file=sys.stderr)
    sizes = {_size(f) for f in files}
    # Only a target of a reference's size can hold its bytes: other recordings are not read for this.
    seen = {_digest(t): ("the file to label", t) for t in targets if _size(t) in sizes}
    for f in files:
        digest = _digest(f)
        if digest in seen:
            kind, first = seen[digest]
            same = ("also given as a file to label" if (kind, first) == ("the file to label", f)
                    else f"the same audio as {kind} {first}")
            raise SerError(f"--reference {f}: {same}; a reference must be other clips of the voice, each given once "
                           "(a clip is never normalized with itself)")
        seen[digest] = ("the reference", f)
    return files


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _digest(path: Path) -> str:
    """SHA-256 of a file's bytes (as ``serve`` recognises a repeated upload); "" when unreadable:
    the decoder then names the file."""
    import hashlib

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return f"unreadable:{path}"
    return digest.hexdigest()


def cmd_predict(args) -> int:
    from ser.app.predict import Predictor, emotion_folders, emotion_names

    files, errors, passed_over = collect_inputs(args.paths)
    if passed_over:
        print(passed_over_note(passed_over), file=sys.stderr)
    if args.reference and args.speaker:
        raise SerError("--reference and --speaker: choose one (with a reference every file is normalized with it)")
    refs = reference_files(args.reference, files) if args.reference else None
    args.speaker = args.speaker or "folder"
    plot = plot_target(args.plot, args.segment, files) if args.plot else None
    predictor = Predictor(args.model, backend=args.backend) if files else None
    reference = predictor.reference(refs, progress=not args.quiet) if refs and predictor is not None else None
    if predictor is not None and args.speaker == "folder" and reference is None:
        named = emotion_folders(files, emotion_names(predictor.bundle))
        if named:
            print(f"note: {len(named)} folder{'s' if len(named) != 1 else ''} named after an emotion "
                  f"({', '.join(named[:3])}{', ...' if len(named) > 3 else ''}) normalized with the folder above, "
                  "never as a speaker of its own (see docs/predict.md, 'Speaker groups')", file=sys.stderr)
    results = (predictor.analyse(files, segment_s=args.segment, grouping=args.speaker, progress=not args.quiet,
                                 reference=reference) if files else [])
    errors += [r.error for r in results if r.error]
    if predictor is not None:
        print_results(results, predictor.classes, args.format, min(args.top_k, len(predictor.classes)),
                      segmented=bool(args.segment),
                      uncertain_below=predictor.bundle.uncertain_below)
    for r in results:
        if r.warning:
            print(f"warning: {r.path}: {r.warning}", file=sys.stderr)
    alone = [r.path for r in results if r.error is None and r.analysed and r.voice_clips == 0]
    if alone and predictor.bundle.normalization.by_group:
        print(f"note: {alone[0] if len(alone) == 1 else f'{len(alone)} files'} answered alone: {LONE_CLIP_ADVICE} "
              "(--reference CLIP...)", file=sys.stderr)
    if plot is not None and results and results[0].error is None:
        save_timeline(plot, results[0], predictor, min(args.top_k, len(predictor.classes)))
        sys.stdout.flush()   # the results first, then this note, when both go to one terminal
        print(f"timeline: {plot}", file=sys.stderr)
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    ok = sum(r.error is None for r in results)
    if errors:
        print(f"predict: {ok} file{'s' if ok != 1 else ''} labelled, {len(errors)} failed", file=sys.stderr)
        return 1
    return 0


def check_writable(path, flag: str) -> Path:
    """``path`` as an output file that can be written, checked before any work is done;
    ``SerError`` naming ``flag`` otherwise."""
    path = Path(path)
    if path.is_dir():
        raise SerError(f"{flag}: {path} is a folder; give a file name such as {path / 'out'}")
    parent = path.parent
    if not parent.is_dir():
        raise SerError(f"{flag}: {path}: " + (f"{parent} is not a folder" if parent.exists()
                                              else f"folder {parent} does not exist"))
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise SerError(f"{flag}: {path}: not writable (permission denied)")
    return path


def cmd_evaluate(args) -> int:
    from ser.app.evaluate import evaluate_folder, evaluation_scan, report_lines
    from ser.app.predict import Predictor
    from ser.core.plots import save_confusion_png

    folder = Path(args.folder)
    if not folder.is_dir():
        raise SerError(f"{folder}: no such folder")
    # Checked now: a bad output path must not fail after minutes of scoring.
    json_path = check_writable(args.json, "--json") if args.json else None
    confusion_path = None
    if args.confusion:
        target = Path(args.confusion)
        confusion_path = check_writable(target if target.suffix.lower() == ".png" else target.with_suffix(".png"),
                                        "--confusion")
    # The table, if any, is checked whole before the model is loaded.
    name, scan, speaker_source = evaluation_scan(folder, args.corpus, args.labels)
    predictor = Predictor(args.model, backend=args.backend)
    scored = evaluate_folder(predictor, folder, name, scan, progress=not args.quiet)
    for line in report_lines(scored, folder, predictor.bundle.normalization.mode, speaker_source):
        print(line)
    try:
        if confusion_path:
            save_confusion_png(confusion_path, scored.y_true, scored.y_pred, predictor.classes, f"{name}: {folder.name}")
            print(f"confusion matrix: {confusion_path}")
        if json_path:
            from ser.core.files import write_json
            write_json(json_path, {"corpus": name, "folder": str(folder), "labels": args.labels,
                                   "failed": scored.failed, "no_speech": scored.silent, **scored.report})
    except OSError as err:
        raise SerError(f"{err.filename or confusion_path or json_path}: cannot write ({err.strerror or err})") from None
    return 1 if scored.failed else 0


def cmd_serve(args) -> int:
    from ser.app.serve import EXAMPLES_ROOT as EXAMPLES_DEFAULT
    from ser.app.serve import (  # aiohttp only here: predict never imports it
        Limits,
        serve,
    )

    for flag, value in (("--max-upload-mb", args.max_upload_mb), ("--max-seconds", args.max_seconds),
                        ("--upload-timeout", args.upload_timeout)):
        if not (math.isfinite(value) and value > 0):
            raise SerError(f"argument {flag}: must be a finite number > 0 (got {value})")
    if not 0 <= args.port <= 65535:
        raise SerError(f"argument --port: must be 0 (any free port) to 65535 (got {args.port})")
    limits = Limits(max_bytes=int(args.max_upload_mb * 2**20), max_seconds=args.max_seconds,
                    upload_timeout_s=args.upload_timeout)
    examples = args.examples
    if examples is not None and examples != "none" and not Path(examples).is_dir():
        raise SerError(f"argument --examples: {examples}: not a folder (a project holding data/raw, or 'none')")
    return serve(args.model, args.backend, args.host, args.port, limits, quiet=args.quiet,
                 examples_from=EXAMPLES_DEFAULT if examples is None else None if examples == "none" else Path(examples))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m ser", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    p = sub.add_parser("predict", help="label audio files or folders with a trained model")
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders (searched recursively)")
    p.add_argument("--model", default="models", help="model bundle folder (default: models)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--top-k", type=int, default=1, metavar="K", help="show the K most likely emotions")
    p.add_argument("--segment", type=segment_arg, metavar="speech|SECONDS",
                   help="answer a recording part by part (long recordings): 'speech', each stretch of speech "
                        "(pauses shorter than 0.5 s joined, longer than 8 s cut evenly); SECONDS, a fixed grid. "
                        "Its headline is the share of speech time per emotion, from the speech segments either way")
    p.add_argument("--backend", choices=["auto", "onnx", "keras"], default="auto",
                   help="auto: the exported ONNX model when present, else Keras")
    p.add_argument("--speaker", choices=["folder", "all", "file"], default=None,
                   help="which inputs share a voice, for speaker normalization: every file in a folder "
                        "(default; a folder named after an emotion joins the folder above it), all inputs, "
                        "or each file alone (its segments together)")
    p.add_argument("--reference", nargs="+", action="extend", metavar="REF",
                   help="other recordings (files or folders) of the same voice, any emotion, no labels: every "
                        "file is normalized with their statistics (3-5 clips help a lone clip most; docs/normalization.md, "
                        "'Know the voice'). They are not labelled themselves")
    p.add_argument("--plot", metavar="PNG", help="also draw the emotion timeline of the (one) input file: its "
                   "waveform and every emotion's probability per --segment (PNG, SVG or PDF)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_predict)

    e = sub.add_parser("evaluate", help="score a model on a corpus folder: a supported corpus's layout, or any "
                                        "folder described by a labels table")
    e.add_argument("folder", help="corpus folder (the clips' paths are relative to it)")
    by = e.add_mutually_exclusive_group(required=True)
    by.add_argument("--corpus", help="the folder is this corpus in its release layout: ravdess_speech, tess, "
                                     "savee, ...")
    by.add_argument("--labels", metavar="TABLE",
                    help="a CSV table with columns path (relative to FOLDER), emotion, speaker[, gender, language], "
                         "as for a corpus in manifest.tables (docs/corpora.md, 'Your own corpus')")
    e.add_argument("--model", default="models")
    e.add_argument("--backend", choices=["auto", "onnx", "keras"], default="auto")
    e.add_argument("--confusion", metavar="PNG", help="also write the confusion matrix as this PNG file")
    e.add_argument("--json", help="also write the metrics as JSON here")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("serve", help="a local web page (and JSON API) to try the model on files or the microphone")
    s.add_argument("--model", default="models", help="model bundle folder (default: models)")
    s.add_argument("--backend", choices=["auto", "onnx", "keras"], default="auto")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; anything else is reachable "
                        "from other machines)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port, printed)")
    s.add_argument("--max-upload-mb", type=float, default=50.0, metavar="MB", help="largest request (default 50)")
    s.add_argument("--max-seconds", type=float, default=600.0, metavar="S",
                   help="longest recording accepted (default 600)")
    s.add_argument("--upload-timeout", type=float, default=60.0, metavar="S",
                   help="seconds a client has to send its upload (default 60)")
    s.add_argument("--examples", metavar="PROJECT", default=None,
                   help="a project folder whose corpora (data/raw, listed by data/manifest/manifest.csv) offer the "
                        "page's example clips (default: this checkout; 'none': no examples)")
    s.add_argument("-q", "--quiet", action="store_true", help="no line per request on stderr")
    s.set_defaults(func=cmd_serve)
    return parser


def main(argv=None) -> int:
    # File names that are not valid UTF-8 reach us as surrogate escapes: print their bytes back.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    args = build_parser().parse_args(argv)
    if getattr(args, "top_k", 1) < 1:
        print("error: argument --top-k: must be >= 1", file=sys.stderr)
        return 2
    if isinstance(getattr(args, "segment", None), float) and not (math.isfinite(args.segment)
                                                                  and 0 < args.segment <= MAX_SEGMENT_S):
        print(f"error: argument --segment: must be a finite number of seconds > 0 and at most {MAX_SEGMENT_S:g} "
              f"(got {args.segment})", file=sys.stderr)
        return 2
    try:
        with signals_as_interrupts():   # SIGTERM and SIGHUP unwind as Ctrl-C does: no temporary file left
            status = args.func(args)
            sys.stdout.flush()
        return status
    except SerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        status = getattr(err, "status", 130)
        print("error: interrupted" if status == 130 else f"error: {err}", file=sys.stderr)
        return status
    except OSError as err:   # stdout is a full disk (/dev/full), a closed pipe, ...
        if err.filename is not None:
            print(f"error: {err.filename}: {err.strerror or type(err).__name__}", file=sys.stderr)
            return 2
        # Nothing more can go to stdout: point it at /dev/null so the exit flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"error: cannot write the output to stdout ({err.strerror or type(err).__name__})", file=sys.stderr)
        return 2
