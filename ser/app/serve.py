"""``python -m ser serve``: a local web page to try the model on files or the microphone, and
one JSON endpoint, over one ``Predictor`` loaded at start-up.

The web library is aiohttp (``aiohttp.web``): an asyncio server that streams multipart uploads
to disk chunk by chunk (so a size limit stops a huge upload early), already pinned for DVC, and
one event loop holds any number of slow clients while a single worker thread runs the model.
``POST /api/predict`` answers with exactly the rows of ``predict --format json``
(``ser.app.rows.json_rows``); every failure is a 4xx (or 5xx) with ``{"error": "one line"}``.
Uploads live in a temporary folder per request, removed when it is answered.

Besides ``file`` fields a request may carry ``reference`` files: other clips of the same voice,
any emotion (``predict --reference``), whose statistics normalize every file to be labelled.
A page resends the same few clips with every request, so their featurized inputs are cached by
the SHA-256 of their bytes (``ReferenceCache``): a warm request pays only for its own files.
"""

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import ipaddress
import itertools
import math
import os
import socket
import sys
import tempfile
import time
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from pathlib import Path

from aiohttp import multipart, web
from aiohttp.http import HttpProcessingError
from aiohttp.http_exceptions import LineTooLong

from ser.app.analysis import SPEECH
from ser.app.predict import Execution
from ser.app.rows import json_rows
from ser.app.timeline import emotion_colors
from ser.audio import decode, headers
from ser.core.errors import DataError, SerError
from ser.core.schema import AUDIO_EXTENSIONS
from ser.model.calibration import WAYS

WEB = Path(__file__).with_name("web")
PAGES = {"/": "index.html", "/app.js": "app.js", "/style.css": "style.css", "/tap-worklet.js": "tap-worklet.js"}
OPTIONS = ("segment", "segment_over", "top_k", "speaker")
SPEAKERS = ("all", "file")   # the files of one request are one voice (as one folder is), or each its own
MIN_SEGMENT_S = 0.5          # shorter segments are never speech (cleaning's minimum); a bound on the work
MAX_SEGMENT_S = 86400.0      # longer is one segment anyway (and overflows sample counts)
CHUNK = 1 << 16
MAX_FIELD = 1024             # bytes of a form field that is not a file (top_k, segment, speaker)
FILE_FIELDS = ("file", "reference")   # the clips to label; other clips of their voice, never labelled
REFERENCE_CACHE = 64         # featurized reference clips kept (a few per voice a page keeps sending)
NAME_BYTES = 200             # of an upload's name on disk (a file name holds 255 at most)
# What aiohttp's multipart reader raises for a body that is not well-formed multipart: a part's
# headers (a line without a colon, a control character, over 8190 bytes, too many), a boundary
# missing or never closed, a part cut short, a bad ``_charset_``; and a broken chunked body.
MALFORMED = (ValueError, RuntimeError, HttpProcessingError, web.RequestPayloadError)


@dataclass(frozen=True)
class Limits:
    """What one request may send and how long it may take to send it."""

    max_bytes: int = 50 * 1024 * 1024
    max_seconds: float = 600.0
    max_files: int = Execution().in_process_files   # more would send Predictor.analyse to worker processes
    max_references: int = 10      # 3-5 clips of a voice do most of the good; they share max_bytes
    upload_timeout_s: float = 60.0
    max_pending: int = 64         # requests received or waiting for the model at once


class ApiError(Exception):
    """A request that cannot be answered: an HTTP status and one line for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Options:
    segment: float | str | None = None   # seconds (a grid), "speech", or None (whole files)
    top_k: int = 1
    speaker: str = "all"
    segment_over: float | None = None    # only files longer than this are segmented


def seconds_field(fields: dict, name: str, low: float, alternatives: str = "") -> float | None:
    """A field of seconds from ``low`` to ``MAX_SEGMENT_S``; None when absent or empty."""
    text = fields.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= MAX_SEGMENT_S):
        raise ApiError(400, f"{name}: must be {alternatives}a number of seconds from {low:g} to {MAX_SEGMENT_S:g} "
                            f"(got {fields[name]!r})")
    return value


def parse_options(fields: dict) -> Options:
    """``Options`` from a request's query and form fields (strings); ``ApiError`` 400 naming
    the field for anything else. Defaults are ``predict``'s: no segments, top 1."""
    unknown = sorted(set(fields) - set(OPTIONS))
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r} (known: {', '.join(FILE_FIELDS + OPTIONS)})")
    speech = fields.get("segment", "").strip().lower() == SPEECH
    segment = SPEECH if speech else seconds_field(fields, "segment", MIN_SEGMENT_S, "'speech' or ")
    segment_over = seconds_field(fields, "segment_over", 0.0)
    top_k = fields.get("top_k", "1").strip() or "1"
    # ASCII digits only: str.isdigit accepts "²", which int() refuses
    if not (top_k.isascii() and top_k.isdigit()) or int(top_k) < 1:
        raise ApiError(400, f"top_k: must be a whole number >= 1 (got {top_k!r})")
    speaker = fields.get("speaker", "all").strip() or "all"
    if speaker not in SPEAKERS:
        raise ApiError(400, f"speaker: must be one of {', '.join(SPEAKERS)} (got {speaker!r})")
    return Options(segment, int(top_k), speaker, segment_over)


def one_line(text: str, limit: int = 200) -> str:
    """``text`` (a client's, or an error about one) fit for one line of JSON or of the console:
    control and other unprintable characters escaped (``\\n``, ``\\x00``), at most ``limit``
    characters."""
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def safe_name(filename: str | None, index: int) -> str:
    """The last part of an uploaded file's name, without path or control characters (a name
    is only ever a label and a suffix here), no longer than a file name may be (its end kept:
    the suffix), ``upload-N`` when none is left."""
    name = "".join(ch for ch in Path((filename or "").replace("\\", "/")).name if ch.isprintable())[-120:]
    while len(name.encode()) > NAME_BYTES:
        name = name[1:]
    return name if name.strip(". ") else f"upload-{index + 1}"


def reason(err: Exception) -> str:
    """The first line of an exception's message, for a client: aiohttp's parser errors keep
    theirs in ``message`` (``str`` starts with the status code)."""
    text = err.message if isinstance(err, HttpProcessingError) else str(err)
    return one_line(text.strip().split("\n")[0].rstrip(":") or type(err).__name__, 160)


async def multipart_step(step, request: web.Request, where: str, last: str | None = None):
    """Await one step of reading a multipart body; ``ApiError`` 400 naming ``where`` (the part)
    when the body is malformed there, or ``last`` (the part read last) when the body ends
    before its closing boundary (aiohttp's words for that: "Reading after EOF" and the like)."""
    try:
        return await step
    except MALFORMED as err:
        if last and isinstance(err, ValueError) and request.content.at_eof():
            raise ApiError(400, f"malformed upload: {last}: the body ends before its closing boundary") from None
        raise ApiError(400, f"malformed upload: {where}: {reason(err)}") from None


def check_part(part, index: int) -> None:
    """Refuse a part the form cannot use: a multipart body inside the form, a part without a
    name (no ``Content-Disposition: form-data; name=...``, or one that is not valid), and a file
    whose name holds a control character (NUL, CR, LF ...: only ever sent by a hostile client,
    browsers and curl escape them), each in one line naming the part."""
    where = f"part {index}"
    if not isinstance(part, multipart.BodyPartReader):
        raise ApiError(400, f"{where}: a multipart body inside the form; send each file as a part of its own")
    if "Content-Disposition" not in part.headers:
        raise ApiError(400, f"{where}: no Content-Disposition header (form-data; name=\"file\"; filename=...)")
    if not part.name:
        raise ApiError(400, f"{where}: no name in its Content-Disposition "
                            f"({one_line(repr(part.headers['Content-Disposition']), 80)})")
    filename = part.filename or ""
    if any(ch < " " or "\x7f" <= ch < "\xa0" for ch in filename):
        raise ApiError(400, f"{where} ({one_line(repr(part.name), 40)}): a control character in the filename "
                            f"{one_line(repr(filename), 80)}")


@dataclass
class Upload:
    name: str                # as the client named it: what the answer and its errors say
    path: Path               # where it lies in the request's temporary folder
    sha256: str = ""         # of its bytes: the reference cache's key, and how a copy is recognised
    reference: bool = False  # a clip of the voice (field ``reference``), not one to label

    @property
    def label(self) -> str:
        """How errors name it: a reference as ``reference NAME``, so the client knows which list."""
        return f"reference {self.name}" if self.reference else self.name


async def receive(request: web.Request, folder: Path, limits: Limits) -> tuple[list[Upload], list[Upload], dict]:
    """Stream a multipart request's ``file`` and ``reference`` parts into ``folder`` (one
    subfolder each, so two uploads may share a name) and return them, each with the SHA-256 of
    its bytes, and its other fields; ``ApiError`` for a body that is not multipart, too large
    (every file counts, references too), incomplete or without a file to label."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(415 if request.body_exists else 400,
                       "send the audio as multipart/form-data, field 'file' (curl -F file=@clip.wav ...)")
    if (request.content_length or 0) > limits.max_bytes + CHUNK:   # the headers say so: stop before reading
        raise ApiError(413, f"upload of {request.content_length / 2**20:.1f} MB; the limit is "
                            f"{limits.max_bytes / 2**20:g} MB (serve --max-upload-mb)")
    uploads, references, fields, total = [], [], {}, 0
    reader = await multipart_step(request.multipart(), request, "Content-Type")
    where = None   # the part read last, as errors name it
    for index in itertools.count(1):
        part = await multipart_step(reader.next(), request, f"part {index}", where)
        if part is None:
            break
        check_part(part, index)
        if part.name not in FILE_FIELDS:
            where, raw = f"part {index} (field {one_line(repr(part.name), 40)})", b""
            while chunk := await multipart_step(part.read_chunk(MAX_FIELD), request, where, where):
                raw += chunk
                if len(raw) > MAX_FIELD:
                    raise ApiError(400, f"field {one_line(repr(part.name), 40)}: longer than {MAX_FIELD} bytes")
            fields[part.name] = raw.decode("utf-8", "replace")
            continue
        is_reference = part.name == "reference"
        into = references if is_reference else uploads
        if is_reference and len(references) == limits.max_references:
            raise ApiError(413, f"more than {limits.max_references} reference files in one request; "
                                "3 to 5 clips of the voice are enough")
        if not is_reference and len(uploads) == limits.max_files:
            raise ApiError(413, f"more than {limits.max_files} files in one request; send them in batches")
        subfolder = folder / (f"reference-{len(into)}" if is_reference else str(len(into)))
        upload = Upload(safe_name(part.filename, len(into)), subfolder, reference=is_reference)
        subfolder.mkdir()
        upload.path = subfolder / upload.name
        digest = hashlib.sha256()
        where = f"part {index} ({upload.label})"
        with open(upload.path, "wb") as out:
            while chunk := await multipart_step(part.read_chunk(CHUNK), request, where, where):
                total += len(chunk)
                if total > limits.max_bytes:
                    raise ApiError(413, f"{upload.label}: the upload is over the limit of "
                                        f"{limits.max_bytes / 2**20:g} MB (serve --max-upload-mb)")
                out.write(chunk)
                digest.update(chunk)
        upload.sha256 = digest.hexdigest()
        into.append(upload)
    if not uploads:
        why = " (reference files only describe the voice; they are not labelled)" if references else ""
        raise ApiError(400, f"no audio: send a file in the form field 'file'{why}")
    return uploads, references, fields


def check_copies(uploads: list[Upload], references: list[Upload]) -> None:
    """Refuse a reference whose bytes are those of a file to label (a clip is never normalized
    with itself: that would hide the very emotion to be recognised) or of an earlier reference
    (it would count twice)."""
    seen = {u.sha256: u for u in uploads}
    for ref in references:
        if ref.sha256 in seen:
            first = seen[ref.sha256]
            same = f"reference {first.name}" if first.reference else f"the file to label {first.name}"
            raise ApiError(422, f"reference {ref.name}: the same audio as {same}; the reference must be other "
                                "clips of the same voice, each sent once")
        seen[ref.sha256] = ref


def check_speaker(fields: dict, references: list[Upload]) -> None:
    """With references every file is normalized with them alone: a ``speaker`` grouping would
    be ignored, so asking for one is refused rather than silently dropped (as ``predict``)."""
    if references and fields.get("speaker", "").strip():
        raise ApiError(400, "speaker and reference: choose one (with reference files every file is compared with "
                            "that voice alone)")


def check_upload(upload: Upload, limits: Limits) -> None:
    """Refuse, before any decoding, an empty file, a copy cut short (the header promises more
    than it holds) or with audio its header does not cover, and a recording longer than
    ``limits.max_seconds``."""
    if upload.path.stat().st_size == 0:
        raise ApiError(422, f"{upload.label}: empty file")
    mismatch = headers.header_mismatch(upload.path)
    if mismatch:
        advice = ("an incomplete copy: upload the whole file" if mismatch.startswith(headers.TRUNCATED)
                  else "its header does not cover all its audio: save it again from the recording program")
        raise ApiError(422, f"{upload.label}: {mismatch}; {advice}")
    seconds = decode.duration(upload.path)
    if seconds is not None and seconds > limits.max_seconds:
        hint = ("short clips are enough" if upload.reference
                else "or `python -m ser predict --segment` for long recordings")
        raise ApiError(413, f"{upload.label}: {seconds:.0f} s long; the limit is {limits.max_seconds:g} s "
                            f"(serve --max-seconds; {hint})")


def public(message: str, uploads: list[Upload]) -> str:
    """An error message with the uploads' temporary paths replaced by their names."""
    for upload in uploads:
        message = message.replace(str(upload.path), upload.name).replace(str(upload.path.parent) + os.sep, "")
    return message


class ReferenceCache:
    """Featurized reference clips (``FileResult``s with raw inputs and speech) by the SHA-256 of
    their bytes, the ``size`` most recently used. Used only on the model thread: no lock."""

    def __init__(self, size: int = REFERENCE_CACHE):
        self.size = size
        self.entries: OrderedDict = OrderedDict()

    def get(self, key: str):
        result = self.entries.get(key)
        if result is not None:
            self.entries.move_to_end(key)
        return result

    def put(self, key: str, result) -> None:
        self.entries[key] = result
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


def reference_error(result, upload: Upload) -> ApiError | None:
    """``predict``'s check of a reference clip (it failed, or holds no speech) as a 422 naming
    the upload as the client named it, or None when the clip can serve."""
    from ser.app.predict import check_reference_result

    try:
        check_reference_result(result, name=upload.path)
    except DataError as err:   # "--reference PATH: ...": the API's words have no CLI flag, no temporary path
        return ApiError(422, "reference " + public(str(err).removeprefix("--reference "), [upload]))
    return None


def featurize_references(predictor, references: list[Upload], limits: Limits, cache: ReferenceCache) -> tuple:
    """``(FileResults, how many came from the cache)`` for the reference uploads, in order,
    each named as the client named it; clips not cached are checked, featurized (never more
    than ``Execution.in_process_files`` at once: more would start worker processes) and cached.
    ``ApiError`` naming the first reference that cannot serve. Model thread only."""
    found = {i: cache.get(ref.sha256) for i, ref in enumerate(references)}
    missing = [i for i, result in found.items() if result is None]
    for i in missing:
        check_upload(references[i], limits)
    batch_size = predictor.execution.in_process_files
    for start in range(0, len(missing), batch_size):
        batch = missing[start:start + batch_size]
        for i, result in zip(batch, predictor.featurize_files([references[i].path for i in batch], progress=False)):
            error = reference_error(result, references[i])
            if error:
                raise error
            cache.put(references[i].sha256, result)
            found[i] = result
    # A copy per request: the cached result keeps its raw inputs (normalization never touches a
    # reference's), only the name differs.
    results = [dataclasses.replace(found[i], path=ref.name) for i, ref in enumerate(references)]
    return results, len(references) - len(missing)


def uncertain_fallback(predictor) -> float | None:
    """The threshold for rows without one of their own (``no speech`` rows: never used there)."""
    return predictor.bundle.uncertain_below


def plain_message(error: str, name: str, limits: Limits) -> str:
    """What the page says about a file that could not be answered: plain words, no library
    names, flags or paths (the technical ``error`` stays in the JSON and the server log)."""
    shown = one_line(name, 80)
    if error.endswith(": empty file"):
        return f"This file is empty ({shown})."
    if f": {headers.TRUNCATED}" in error:
        return f"This file is incomplete: it stops before its end ({shown}). Please upload the whole file."
    if f": {headers.EXTRA_DATA}" in error:
        return f"This file holds more sound than its own header says ({shown}). Please save it again and retry."
    if "s long; the limit is" in error:
        limit = (f"{limits.max_seconds:.0f} seconds" if limits.max_seconds < 120
                 else f"{limits.max_seconds / 60:.3g} minutes")
        return f"This recording is too long for this page ({shown}): the limit is {limit}."
    if "too large to decode" in error:
        return f"This file is too large to analyse here ({shown})."
    return f"This file is not audio we can read ({shown})."


def error_row(upload: Upload, error: str, limits: Limits) -> dict:
    """The answer row of a file that could not be answered: the other files of its request are
    answered all the same (``predict`` answers the good files and names the bad ones)."""
    return {"file": upload.name, "result": "error", "error": error, "message": plain_message(error, upload.name, limits),
            "emotion": None, "confidence": None, "probabilities": None, "top_k": []}


def answer_uploads(predictor, uploads: list[Upload], options: Options, limits: Limits, reference=None) -> list[dict]:
    """The JSON rows ``predict --format json`` would print for these files (named as the
    client named them), normalized with ``reference`` (``predict --reference``) when given.
    A file that cannot be answered (empty, cut short, too long, not audio) gets an ``error_row``
    in its place, and the others their answers. Runs on the server's one model thread:
    ``Predictor`` is not shared between threads."""
    errors = {}
    for i, upload in enumerate(uploads):
        try:
            check_upload(upload, limits)
        except ApiError as err:
            errors[i] = str(err)
    good = [u for i, u in enumerate(uploads) if i not in errors]
    results = predictor.analyse([u.path for u in good], segment_s=options.segment, grouping=options.speaker,
                                progress=False, reference=reference, segment_over=options.segment_over) if good else []
    for result, upload in zip(results, good):
        result.path = upload.name
        # A group is named by its file under speaker=file: the client's name, never the temporary path.
        result.normalization = public(result.normalization, uploads)
        if result.error:
            result.error = public(result.error, uploads)
    answered, out = iter(results), []
    for i, upload in enumerate(uploads):
        result = None if i in errors else next(answered)
        error = errors[i] if result is None else result.error
        out += [error_row(upload, error, limits)] if error else json_rows(
            [result], predictor.classes, min(options.top_k, len(predictor.classes)), uncertain_fallback(predictor),
            segmented=bool(options.segment) and result.segmentation is not None)
    return out


@dataclass
class Answer:
    """What the model thread hands back: the rows, and for Server-Timing the reference's share."""

    rows: list
    reference_ms: float = 0.0   # featurizing (or finding cached) the reference clips
    cached: int = 0             # reference clips found in the cache


def answer_request(predictor, uploads: list[Upload], references: list[Upload], options: Options, limits: Limits,
                   cache: ReferenceCache) -> Answer:
    """``answer_uploads`` for the files to label, normalized with the request's reference
    clips when it has any (featurized once, then cached). Model thread only."""
    from ser.app.predict import Reference

    if not references:
        return Answer(answer_uploads(predictor, uploads, options, limits))
    started = time.perf_counter()
    results, cached = featurize_references(predictor, references, limits, cache)
    reference = Reference.from_results(results)
    reference_ms = (time.perf_counter() - started) * 1000
    return Answer(answer_uploads(predictor, uploads, options, limits, reference), reference_ms, cached)


STATE = web.AppKey("state", dict)


async def predict_handler(request: web.Request) -> web.Response:
    state = request.app[STATE]
    limits = state["limits"]
    started = time.perf_counter()
    if state["pending"] >= limits.max_pending:
        raise ApiError(503, f"busy: {state['pending']} requests in progress; try again shortly")
    state["pending"] += 1
    try:
        with tempfile.TemporaryDirectory(prefix="ser-serve-") as folder:
            try:
                async with asyncio.timeout(limits.upload_timeout_s):
                    uploads, references, fields = await receive(request, Path(folder), limits)
            except TimeoutError:
                raise ApiError(408, f"the upload did not arrive within {limits.upload_timeout_s:g} s") from None
            except (ValueError, ConnectionError, asyncio.IncompleteReadError) as err:
                raise ApiError(400, f"incomplete or malformed upload ({type(err).__name__})") from None
            received = time.perf_counter()
            fields = {**request.query, **fields}
            options = parse_options(fields)
            check_speaker(fields, references)
            check_copies(uploads, references)
            work = partial(answer_request, state["predictor"], uploads, references, options, limits,
                           state["reference_cache"])
            loop = asyncio.get_running_loop()
            try:
                answer = await loop.run_in_executor(state["model_thread"], work)
            finally:   # the next request's set-up, in the model thread while it waits: not awaited
                with contextlib.suppress(RuntimeError):   # the thread is shutting down: no next request
                    loop.run_in_executor(state["model_thread"], state["predictor"].preload)
            answered = time.perf_counter()
    finally:
        state["pending"] -= 1
    elapsed_ms = (time.perf_counter() - started) * 1000
    refs = (f", {len(references)} reference{'s' if len(references) != 1 else ''} ({answer.cached} cached)"
            if references else "")
    failed = [row["error"] for row in answer.rows if row.get("error")]
    if not state["quiet"]:
        print(f"{request.remote} POST {request.path_qs} 200 ({len(uploads)} file{'s' if len(uploads) != 1 else ''}"
              f"{refs}{f', {len(failed)} failed' if failed else ''}, {elapsed_ms:.0f} ms)", file=sys.stderr, flush=True)
        for error in failed:
            print(f"{request.remote}   file error: {one_line(error, 300)}", file=sys.stderr, flush=True)
    # Where the time went: receiving the upload, waiting for and running the model (of which
    # the reference clips, featurized or found in the cache), in all.
    timing = f"receive;dur={(received - started) * 1000:.1f}, analyse;dur={(answered - received) * 1000:.1f}, "
    if references:
        timing += f'reference;dur={answer.reference_ms:.1f};desc="{answer.cached} of {len(references)} cached", '
    timing += f"total;dur={elapsed_ms:.1f}"
    return web.json_response(answer.rows, headers={"Server-Timing": timing})


async def csv_handler(request: web.Request) -> web.Response:
    """``POST /api/csv``: answer rows (the JSON ``/api/predict`` gave, any number of requests'
    worth) as the CSV ``predict --format csv`` writes for them, so a page's download and the
    CLI's table are one format."""
    from ser.app.rows import write_csv_rows

    classes = request.app[STATE]["predictor"].classes
    try:
        table = await request.json()
    except ValueError:
        raise ApiError(400, "the body is not JSON: send the list of rows /api/predict answered") from None
    fields = {"file", "result", "emotion", "confidence", "speech_s", "probabilities", "normalization", "voice_clips",
              "warning"}
    if not isinstance(table, list) or not all(isinstance(row, dict) for row in table):
        raise ApiError(400, "the body must be a JSON list of the rows /api/predict answered")
    for i, row in enumerate(table):
        if row.get("error"):
            continue
        missing = sorted(fields - set(row))
        if missing:
            raise ApiError(400, f"row {i}: no {', '.join(missing)} (send the rows /api/predict answered)")
        probs = row["probabilities"]
        if probs is not None and not (isinstance(probs, dict) and set(probs) == set(classes)
                                      and all(isinstance(v, (int, float)) for v in probs.values())):
            raise ApiError(400, f"row {i}: probabilities must give a number for each of {', '.join(classes)}")
    segmented = any("segment" in row for row in table)
    text = io.StringIO()
    try:
        write_csv_rows([{**row, "segment": row.get("segment", "all")} for row in table], classes, segmented, text)
    except (TypeError, ValueError, KeyError) as err:
        raise ApiError(400, f"a row holds a value of the wrong kind ({type(err).__name__}: {one_line(str(err), 80)})") \
            from None
    return web.Response(text=text.getvalue(), content_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="answers.csv"'})


EXAMPLES_ROOT = Path(__file__).resolve().parent.parent   # the checkout: data/manifest, data/prepared, data/raw
CORPUS_NAMES = {"ravdess_speech": "RAVDESS speech", "ravdess_song": "RAVDESS song", "crema_d": "CREMA-D", "tess": "TESS",
                "savee": "SAVEE", "jl_corpus": "JL-Corpus", "esd": "ESD", "asvp_esd": "ASVP-ESD"}


def examples(root: Path | None, classes) -> list[dict]:
    """Up to one clip per class from the corpora pulled into ``root/data/raw``, for the page's
    "try an example": ``{"name", "filename", "url", "emotion", "corpus", "heard_in_training",
    "path"}`` (``path`` stays on the server).

    Read from the manifest stage's table (``data/manifest/manifest.csv``); clips the balanced
    training set left out (not in ``data/prepared/clips.csv``) are preferred, since the model has
    not heard them. None when the corpora are not there (nothing is shipped with the code)."""
    import csv

    if root is None:
        return []
    try:
        with open(root / "data" / "manifest" / "manifest.csv", newline="") as f:
            manifest = [row for row in csv.DictReader(f) if (root / row["path"]).is_file()]
        try:
            with open(root / "data" / "prepared" / "clips.csv", newline="") as f:
                trained = {row["path"] for row in csv.DictReader(f)}
        except FileNotFoundError:
            trained = set()
    except (OSError, KeyError, csv.Error, UnicodeDecodeError):
        return []
    chosen = []
    for emotion in classes:
        candidates = sorted((row["path"] in trained, row["path"], row["corpus"]) for row in manifest
                            if row["emotion"] == emotion)
        if not candidates:
            continue
        unheard = [c for c in candidates if not c[0]] or candidates
        heard, path, corpus = unheard[len(unheard) // 2]   # the middle: not always a corpus's first speaker
        chosen.append({"name": f"{emotion} ({CORPUS_NAMES.get(corpus, corpus)})", "filename": Path(path).name,
                       "emotion": emotion, "corpus": corpus, "heard_in_training": heard, "path": str(root / path)})
    return [{**e, "url": f"/api/examples/{i}"} for i, e in enumerate(chosen)]


async def examples_handler(request: web.Request) -> web.Response:
    """``GET /api/examples``: a few clips to try, from the corpora in ``data/raw`` (``examples``)."""
    return web.json_response([{k: v for k, v in e.items() if k != "path"} for e in request.app[STATE]["examples"]])


async def example_handler(request: web.Request) -> web.FileResponse:
    """``GET /api/examples/N``: the audio of example N."""
    examples = request.app[STATE]["examples"]
    index = request.match_info["index"]
    if not (index.isascii() and index.isdigit() and int(index) < len(examples)):
        raise ApiError(404, f"no example {one_line(index, 20)}")
    return web.FileResponse(examples[int(index)]["path"])


async def info_handler(request: web.Request) -> web.Response:
    """What the page needs to know: classes and their colours, the limits, the model, and the
    ``uncertain`` threshold of each way a clip may be normalized (``ser.model.calibration.way_for``):
    ``file`` alone, with a few other clips of its voice (``reference``), or a whole ``group``."""
    state = request.app[STATE]
    predictor, limits = state["predictor"], state["limits"]
    calibration = predictor.bundle.calibration
    return web.json_response({
        "model": str(predictor.model_dir), "backend": predictor.backend, "classes": predictor.classes,
        "colors": emotion_colors(predictor.classes), "normalize": predictor.bundle.normalization.mode,
        "sample_rate": predictor.bundle.sample_rate,
        "uncertain_below": {way: calibration[way]["uncertain_below"] for way in WAYS
                            if isinstance(calibration.get(way), dict)},
        "group_min_clips": calibration.get("group_min_clips"), "extensions": list(AUDIO_EXTENSIONS),
        "limits": {"max_bytes": limits.max_bytes, "max_seconds": limits.max_seconds, "max_files": limits.max_files,
                   "max_references": limits.max_references, "min_segment_s": MIN_SEGMENT_S}})


async def page_handler(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB / PAGES[request.path], headers={"Cache-Control": "no-cache"})


def allowed_hosts(host: str, port: int) -> set | None:
    """``Host`` headers a loopback server answers (None: any, when it listens elsewhere).
    A web page on another site can reach a loopback port by re-pointing its own name at
    127.0.0.1 (DNS rebinding): its requests then carry that name, and are refused."""
    if not is_loopback(host):
        return None
    names = {"localhost", "127.0.0.1", "[::1]", host if ":" not in host else f"[{host}]"}
    return {f"{name}:{port}" for name in names} | ({"localhost", "127.0.0.1"} if port == 80 else set())


@web.middleware
async def json_errors(request: web.Request, handler):
    """Every failure as ``{"error": "one line"}`` with its status; never a traceback."""
    hosts = request.app[STATE]["hosts"]
    try:
        if hosts is not None and request.host not in hosts:
            raise ApiError(403, f"host {request.host!r} refused: use http://{sorted(hosts)[0]}/")
        return await handler(request)
    except ApiError as err:
        status, message = err.status, str(err)
    except web.HTTPException as err:   # aiohttp's own: 404, 405, 413 ...
        # the path as aiohttp decoded it: %0A is a newline, %00 a NUL
        status, message = err.status, f"{err.reason}: {request.method} {one_line(request.path)}"
    except Exception as err:  # a bug: one line for the client and for the console, the server goes on
        first = str(err).splitlines()[0] if str(err) else ""
        status, message = 500, f"internal error ({type(err).__name__}: {one_line(first)})"
        print(f"error: {request.method} {request.path}: {message}", file=sys.stderr, flush=True)
    if not request.app[STATE]["quiet"] and request.path.startswith("/api/"):
        print(f"{request.remote} {request.method} {request.path_qs} {status} ({message})", file=sys.stderr, flush=True)
    return web.json_response({"error": message}, status=status)


def json_handle_error(quiet: bool = False):
    """``aiohttp.web.RequestHandler.handle_error`` for serve: a request aiohttp's HTTP parser
    refuses (a duplicate ``Host``, a header over 8190 bytes, ``Content-Length`` with
    ``Transfer-Encoding``, a broken chunked body ...) never reaches a middleware; aiohttp answers
    it here, as text/plain, and logs a traceback. This answers ``{"error": "one line"}`` like
    every other failure (431 for a header too long or too many), one line on the console."""

    def handle_error(self, request, status=500, exc=None, message=None):
        if isinstance(exc, LineTooLong):
            status, text = 431, f"bad HTTP request: a header or the request line is over {exc.args[1]} bytes"
        elif isinstance(exc, HttpProcessingError):
            text = reason(exc)
            status = 431 if text == "Too many headers received" else status
            text = f"bad HTTP request: {text}"
        elif status == 500 and exc is not None:   # a handler's exception past json_errors: a bug, as there
            first = str(exc).splitlines()[0] if str(exc) else ""
            text = f"internal error ({type(exc).__name__}: {one_line(first)})"
        else:
            text = one_line(message or HTTPStatus(status).phrase)
        if status >= 500 or not quiet:
            print(f"{request.remote} {status} ({text})", file=sys.stderr, flush=True)
        if request.writer.output_size > 0:   # as aiohttp's: an answer already begun cannot be replaced
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        response = web.json_response({"error": text}, status=status)
        response.force_close()
        return response

    return handle_error


@contextlib.contextmanager
def json_protocol_errors(quiet: bool = False):
    """While serving: ``json_handle_error`` in place of aiohttp's ``RequestHandler.handle_error``,
    and no warning on the console for a part's malformed ``Content-Disposition`` (the part is
    refused with a 400 of its own; aiohttp's warning would print the client's header).

    Why a replaced method: aiohttp has no hook for the answer to a request its parser refuses
    (aio-libs/aiohttp#3287, open), and the class is named in code serve cannot reach:
    ``web.Server`` builds a ``RequestHandler`` for each connection and ``web.run_app`` its own
    ``AppRunner``; a subclass would mean a runner of serve's own over aiohttp's private
    ``AppRunner._make_server`` and ``Server._kwargs`` (and run_app's signal handling redone).
    ``handle_error(request, status, exc, message)`` is a public method of the exported
    ``web.RequestHandler``, that signature the same since aiohttp 2 (checked against 3.14.5);
    it is replaced while serve runs (the server's own process), and restored."""
    original = web.RequestHandler.handle_error
    web.RequestHandler.handle_error = json_handle_error(quiet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", multipart.BadContentDispositionHeader)
            warnings.simplefilter("ignore", multipart.BadContentDispositionParam)
            yield
    finally:
        web.RequestHandler.handle_error = original


def create_app(predictor, limits: Limits = Limits(), hosts: set | None = None, quiet: bool = False,
               examples_from: Path | None = EXAMPLES_ROOT) -> web.Application:
    """The aiohttp application over a loaded ``predictor``: the page, ``GET /api/info``,
    ``POST /api/predict``, ``POST /api/csv`` and the example clips found under
    ``examples_from`` (``examples``). One worker thread runs every model call, in arrival order."""
    app = web.Application(middlewares=[json_errors], client_max_size=limits.max_bytes + CHUNK)
    app[STATE] = {"predictor": predictor, "limits": limits, "hosts": hosts, "quiet": quiet, "pending": 0,
                  "model_thread": ThreadPoolExecutor(max_workers=1, thread_name_prefix="ser-model"),
                  "reference_cache": ReferenceCache(), "examples": examples(examples_from, predictor.classes)}
    for path in PAGES:
        app.router.add_get(path, page_handler)
    app.router.add_get("/api/info", info_handler)
    app.router.add_post("/api/predict", predict_handler)
    app.router.add_post("/api/csv", csv_handler)
    app.router.add_get("/api/examples", examples_handler)
    app.router.add_get("/api/examples/{index}", example_handler)

    async def stop_thread(app):
        app[STATE]["model_thread"].shutdown(wait=True, cancel_futures=True)

    app.on_cleanup.append(stop_thread)
    return app


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any address in 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one); ``SerError`` in one line."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as err:
        raise SerError(f"--host {host}: not an address to listen on ({err})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)   # from now on connections wait in the backlog: safe to announce the URL
    except OSError as err:
        sock.close()
        hint = " (--port 0 picks a free one)" if err.errno == 98 else ""
        raise SerError(f"cannot listen on {host}:{port}: {err.strerror or err}{hint}") from None
    sock.setblocking(False)
    return sock


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def serve(model_dir, backend: str = "auto", host: str = "127.0.0.1", port: int = 8000, limits: Limits = Limits(),
          quiet: bool = False, examples_from: Path | None = None) -> int:
    """Load the bundle once, warm it up, listen on ``host:port`` and serve until Ctrl-C (with
    example clips from the corpora under ``examples_from``)."""
    # ONNX Runtime's telemetry otherwise leaves a session file (.ses) in the temporary folder
    # on import: the server writes nothing but its uploads, and removes those.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    from ser.app.predict import Predictor

    started = time.perf_counter()
    predictor = Predictor(model_dir, backend=backend)
    predictor.warm_up()
    sock = listen(host, port)
    bound_port = sock.getsockname()[1]
    app = create_app(predictor, limits, allowed_hosts(host, bound_port), quiet, examples_from)
    print(f"serving {url(sock)} (model {predictor.model_dir}, {predictor.backend}; loaded in "
          f"{time.perf_counter() - started:.2f} s); Ctrl-C to stop", flush=True)
    if not is_loopback(host):
        print(f"warning: listening on {host}, not loopback: anyone who can reach this machine on port {bound_port} "
              "can use it", file=sys.stderr, flush=True)
    with json_protocol_errors(quiet):
        web.run_app(app, sock=sock, print=None, access_log=None, shutdown_timeout=5)
    return 0
