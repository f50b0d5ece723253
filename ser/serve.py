"""``python -m ser serve``: a local web page to try the model on files or the microphone, and
one JSON endpoint, over one ``Predictor`` loaded at start-up.

The web library is aiohttp (``aiohttp.web``): an asyncio server that streams multipart uploads
to disk chunk by chunk (so a size limit stops a huge upload early), already pinned for DVC, and
one event loop holds any number of slow clients while a single worker thread runs the model.
``POST /api/predict`` answers with exactly the rows of ``predict --format json``
(``ser.rows.json_rows``); every failure is a 4xx (or 5xx) with ``{"error": "one line"}``.
Uploads live in a temporary folder per request, removed when it is answered.

Besides ``file`` fields a request may carry ``reference`` files: other clips of the same voice,
any emotion (``predict --reference``), whose statistics normalise every file to be labelled.
A page resends the same few clips with every request, so their featurised inputs are cached by
the SHA-256 of their bytes (``ReferenceCache``): a warm request pays only for its own files.
"""

import asyncio
import contextlib
import dataclasses
import hashlib
import ipaddress
import math
import os
import socket
import sys
import tempfile
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from aiohttp import web

from . import audio
from .cli import AUDIO_EXTENSIONS
from .calibration import WAYS
from .errors import DataError, SerError
from .rows import json_rows
from .timeline import emotion_colors

WEB = Path(__file__).with_name("web")
PAGES = {"/": "index.html", "/app.js": "app.js", "/style.css": "style.css", "/tap-worklet.js": "tap-worklet.js"}
OPTIONS = ("segment", "top_k", "speaker")
SPEAKERS = ("all", "file")   # the files of one request are one voice (as one folder is), or each its own
MIN_SEGMENT_S = 0.5          # shorter segments are never speech (cleaning's minimum); a bound on the work
MAX_SEGMENT_S = 86400.0      # longer is one segment anyway (and overflows sample counts)
CHUNK = 1 << 16
MAX_FIELD = 1024             # bytes of a form field that is not a file (top_k, segment, speaker)
FILE_FIELDS = ("file", "reference")   # the clips to label; other clips of their voice, never labelled
REFERENCE_CACHE = 64         # featurised reference clips kept (a few per voice a page keeps sending)
FEATURISE_BATCH = 8          # Predictor.featurise_files runs more at once in worker processes


@dataclass(frozen=True)
class Limits:
    """What one request may send and how long it may take to send it."""

    max_bytes: int = 50 * 1024 * 1024
    max_seconds: float = 600.0
    max_files: int = 8            # more would send Predictor.analyse to worker processes
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
    segment: float | None = None
    top_k: int = 1
    speaker: str = "all"


def parse_options(fields: dict) -> Options:
    """``Options`` from a request's query and form fields (strings); ``ApiError`` 400 naming
    the field for anything else. Defaults are ``predict``'s: no segments, top 1."""
    unknown = sorted(set(fields) - set(OPTIONS))
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r} (known: {', '.join(FILE_FIELDS + OPTIONS)})")
    segment = None
    if fields.get("segment", "").strip():
        try:
            segment = float(fields["segment"])
        except ValueError:
            segment = math.nan
        if not (math.isfinite(segment) and MIN_SEGMENT_S <= segment <= MAX_SEGMENT_S):
            raise ApiError(400, f"segment: must be a number of seconds from {MIN_SEGMENT_S} to {MAX_SEGMENT_S:g} "
                                f"(got {fields['segment']!r})")
    top_k = fields.get("top_k", "1").strip() or "1"
    # ASCII digits only: str.isdigit accepts "²", which int() refuses
    if not (top_k.isascii() and top_k.isdigit()) or int(top_k) < 1:
        raise ApiError(400, f"top_k: must be a whole number >= 1 (got {top_k!r})")
    speaker = fields.get("speaker", "all").strip() or "all"
    if speaker not in SPEAKERS:
        raise ApiError(400, f"speaker: must be one of {', '.join(SPEAKERS)} (got {speaker!r})")
    return Options(segment, int(top_k), speaker)


def safe_name(filename: str | None, index: int) -> str:
    """The last part of an uploaded file's name, without path or control characters (a name
    is only ever a label and a suffix here), ``upload-N`` when none is left."""
    name = "".join(ch for ch in Path((filename or "").replace("\\", "/")).name if ch.isprintable())[-120:]
    return name if name.strip(". ") else f"upload-{index + 1}"


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
    reader = await request.multipart()
    async for part in reader:
        if part.name not in FILE_FIELDS:
            raw = b""
            while chunk := await part.read_chunk(MAX_FIELD):
                raw += chunk
                if len(raw) > MAX_FIELD:
                    raise ApiError(400, f"field {part.name!r}: longer than {MAX_FIELD} bytes")
            fields[part.name or ""] = raw.decode("utf-8", "replace")
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
        with open(upload.path, "wb") as out:
            while chunk := await part.read_chunk(CHUNK):
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
    """Refuse a reference whose bytes are those of a file to label (a clip is never normalised
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
    """With references every file is normalised with them alone: a ``speaker`` grouping would
    be ignored, so asking for one is refused rather than silently dropped (as ``predict``)."""
    if references and fields.get("speaker", "").strip():
        raise ApiError(400, "speaker and reference: choose one (with reference files every file is compared with "
                            "that voice alone)")


def check_upload(upload: Upload, limits: Limits) -> None:
    """Refuse, before any decoding, an empty file, a copy cut short (the header promises more
    than it holds) and a recording longer than ``limits.max_seconds``."""
    if upload.path.stat().st_size == 0:
        raise ApiError(422, f"{upload.label}: empty file")
    cut = audio.truncation(upload.path)
    if cut:
        raise ApiError(422, f"{upload.label}: {cut}; an incomplete copy: upload the whole file")
    seconds = audio.duration(upload.path)
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
    """Featurised reference clips (``FileResult``s with raw inputs and speech) by the SHA-256 of
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
    from .predict import check_reference_result

    try:
        check_reference_result(result, name=upload.path)
    except DataError as err:   # "--reference PATH: ...": the API's words have no CLI flag, no temporary path
        return ApiError(422, "reference " + public(str(err).removeprefix("--reference "), [upload]))
    return None


def featurise_references(predictor, references: list[Upload], limits: Limits, cache: ReferenceCache) -> tuple:
    """``(FileResults, how many came from the cache)`` for the reference uploads, in order,
    each named as the client named it; clips not cached are checked, featurised (never more
    than ``FEATURISE_BATCH`` at once: more would start worker processes) and cached.
    ``ApiError`` naming the first reference that cannot serve. Model thread only."""
    found = {i: cache.get(ref.sha256) for i, ref in enumerate(references)}
    missing = [i for i, result in found.items() if result is None]
    for i in missing:
        check_upload(references[i], limits)
    for start in range(0, len(missing), FEATURISE_BATCH):
        batch = missing[start:start + FEATURISE_BATCH]
        for i, result in zip(batch, predictor.featurise_files([references[i].path for i in batch], progress=False)):
            error = reference_error(result, references[i])
            if error:
                raise error
            cache.put(references[i].sha256, result)
            found[i] = result
    # A copy per request: the cached result keeps its raw inputs (normalisation never touches a
    # reference's), only the name differs.
    results = [dataclasses.replace(found[i], path=ref.name) for i, ref in enumerate(references)]
    return results, len(references) - len(missing)


def uncertain_fallback(predictor) -> float | None:
    """The threshold for rows without one of their own (``no speech`` rows: never used there)."""
    return predictor.bundle["calibration"].get("group", {}).get("uncertain_below")


def answer_uploads(predictor, uploads: list[Upload], options: Options, limits: Limits, reference=None) -> list[dict]:
    """The JSON rows ``predict --format json`` would print for these files (named as the
    client named them), normalised with ``reference`` (``predict --reference``) when given,
    or ``ApiError`` 422 naming the first file that failed. Runs on the server's one model
    thread: ``Predictor`` is not shared between threads."""
    for upload in uploads:
        check_upload(upload, limits)
    results = predictor.analyse([u.path for u in uploads], segment_s=options.segment, grouping=options.speaker,
                                progress=False, reference=reference)
    failed = [r.error for r in results if r.error]
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise ApiError(422, public(failed[0], uploads) + more)
    for result, upload in zip(results, uploads):
        result.path = upload.name
        # A group is named by its file under speaker=file: the client's name, never the temporary path.
        result.normalization = public(result.normalization, uploads)
    return json_rows(results, predictor.classes, min(options.top_k, len(predictor.classes)),
                     uncertain_fallback(predictor), segmented=bool(options.segment))


@dataclass
class Answer:
    """What the model thread hands back: the rows, and for Server-Timing the reference's share."""

    rows: list
    reference_ms: float = 0.0   # featurising (or finding cached) the reference clips
    cached: int = 0             # reference clips found in the cache


def answer_request(predictor, uploads: list[Upload], references: list[Upload], options: Options, limits: Limits,
                   cache: ReferenceCache) -> Answer:
    """``answer_uploads`` for the files to label, normalised with the request's reference
    clips when it has any (featurised once, then cached). Model thread only."""
    from .predict import Reference

    if not references:
        return Answer(answer_uploads(predictor, uploads, options, limits))
    started = time.perf_counter()
    results, cached = featurise_references(predictor, references, limits, cache)
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
                    loop.run_in_executor(state["model_thread"], state["predictor"].prepare)
            answered = time.perf_counter()
    finally:
        state["pending"] -= 1
    elapsed_ms = (time.perf_counter() - started) * 1000
    refs = (f", {len(references)} reference{'s' if len(references) != 1 else ''} ({answer.cached} cached)"
            if references else "")
    if not state["quiet"]:
        print(f"{request.remote} POST {request.path_qs} 200 ({len(uploads)} file{'s' if len(uploads) != 1 else ''}"
              f"{refs}, {elapsed_ms:.0f} ms)", file=sys.stderr, flush=True)
    # Where the time went: receiving the upload, waiting for and running the model (of which
    # the reference clips, featurised or found in the cache), in all.
    timing = f"receive;dur={(received - started) * 1000:.1f}, analyse;dur={(answered - received) * 1000:.1f}, "
    if references:
        timing += f'reference;dur={answer.reference_ms:.1f};desc="{answer.cached} of {len(references)} cached", '
    timing += f"total;dur={elapsed_ms:.1f}"
    return web.json_response(answer.rows, headers={"Server-Timing": timing})


async def info_handler(request: web.Request) -> web.Response:
    """What the page needs to know: classes and their colours, the limits, the model, and the
    ``uncertain`` threshold of each way a clip may be normalised (``ser.calibration.way_for``):
    ``file`` alone, with a few other clips of its voice (``reference``), or a whole ``group``."""
    state = request.app[STATE]
    predictor, limits = state["predictor"], state["limits"]
    calibration = predictor.bundle["calibration"]
    return web.json_response({
        "model": str(predictor.model_dir), "backend": predictor.backend, "classes": predictor.classes,
        "colors": emotion_colors(predictor.classes), "normalize": predictor.bundle["normalize"]["mode"],
        "sample_rate": predictor.bundle["sample_rate"],
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
        status, message = err.status, f"{err.reason}: {request.method} {request.path}"
    except Exception as err:  # a bug: one line for the client and for the console, the server goes on
        status, message = 500, f"internal error ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        print(f"error: {request.method} {request.path}: {message}", file=sys.stderr, flush=True)
    if not request.app[STATE]["quiet"] and request.path.startswith("/api/"):
        print(f"{request.remote} {request.method} {request.path_qs} {status} ({message})", file=sys.stderr, flush=True)
    return web.json_response({"error": message}, status=status)


def create_app(predictor, limits: Limits = Limits(), hosts: set | None = None, quiet: bool = False) -> web.Application:
    """The aiohttp application over a loaded ``predictor``: the page, ``GET /api/info`` and
    ``POST /api/predict``. One worker thread runs every model call, in arrival order."""
    app = web.Application(middlewares=[json_errors], client_max_size=limits.max_bytes + CHUNK)
    app[STATE] = {"predictor": predictor, "limits": limits, "hosts": hosts, "quiet": quiet, "pending": 0,
                  "model_thread": ThreadPoolExecutor(max_workers=1, thread_name_prefix="ser-model"),
                  "reference_cache": ReferenceCache()}
    for path in PAGES:
        app.router.add_get(path, page_handler)
    app.router.add_get("/api/info", info_handler)
    app.router.add_post("/api/predict", predict_handler)

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
          quiet: bool = False) -> int:
    """Load the bundle once, warm it up, listen on ``host:port`` and serve until Ctrl-C."""
    # ONNX Runtime's telemetry otherwise leaves a session file (.ses) in the temporary folder
    # on import: the server writes nothing but its uploads, and removes those.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    from .predict import Predictor

    started = time.perf_counter()
    predictor = Predictor(model_dir, backend=backend)
    predictor.warm_up()
    sock = listen(host, port)
    bound_port = sock.getsockname()[1]
    app = create_app(predictor, limits, allowed_hosts(host, bound_port), quiet)
    print(f"serving {url(sock)} (model {predictor.model_dir}, {predictor.backend}; loaded in "
          f"{time.perf_counter() - started:.2f} s); Ctrl-C to stop", flush=True)
    if not is_loopback(host):
        print(f"warning: listening on {host}, not loopback: anyone who can reach this machine on port {bound_port} "
              "can use it", file=sys.stderr, flush=True)
    web.run_app(app, sock=sock, print=None, access_log=None, shutdown_timeout=5)
    return 0
