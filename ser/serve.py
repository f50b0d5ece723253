"""``python -m ser serve``: a local web page to try the model on files or the microphone, and
one JSON endpoint, over one ``Predictor`` loaded at start-up.

The web library is aiohttp (``aiohttp.web``): an asyncio server that streams multipart uploads
to disk chunk by chunk (so a size limit stops a huge upload early), already pinned for DVC, and
one event loop holds any number of slow clients while a single worker thread runs the model.
``POST /api/predict`` answers with exactly the rows of ``predict --format json``
(``ser.rows.json_rows``); every failure is a 4xx (or 5xx) with ``{"error": "one line"}``.
Uploads live in a temporary folder per request, removed when it is answered.
"""

import asyncio
import contextlib
import ipaddress
import math
import os
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from aiohttp import web

from . import audio
from .cli import AUDIO_EXTENSIONS
from .errors import SerError
from .rows import json_rows
from .timeline import emotion_colors

WEB = Path(__file__).with_name("web")
PAGES = {"/": "index.html", "/app.js": "app.js", "/style.css": "style.css", "/tap-worklet.js": "tap-worklet.js"}
OPTIONS = ("segment", "top_k", "speaker")
SPEAKERS = ("all", "file")   # the files of one request are one voice (as one folder is), or each its own
MIN_SEGMENT_S = 0.5          # shorter segments are never speech (cleaning's minimum); a bound on the work
CHUNK = 1 << 16
MAX_FIELD = 1024             # bytes of a form field that is not a file (top_k, segment, speaker)


@dataclass(frozen=True)
class Limits:
    """What one request may send and how long it may take to send it."""

    max_bytes: int = 50 * 1024 * 1024
    max_seconds: float = 600.0
    max_files: int = 8            # more would send Predictor.analyse to worker processes
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
        raise ApiError(400, f"unknown field {unknown[0]!r} (known: file, {', '.join(OPTIONS)})")
    segment = None
    if fields.get("segment", "").strip():
        try:
            segment = float(fields["segment"])
        except ValueError:
            segment = math.nan
        if not (math.isfinite(segment) and segment >= MIN_SEGMENT_S):
            raise ApiError(400, f"segment: must be a number of seconds >= {MIN_SEGMENT_S} (got {fields['segment']!r})")
    top_k = fields.get("top_k", "1").strip() or "1"
    if not top_k.isdigit() or int(top_k) < 1:
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
    name: str    # as the client named it: what the answer and its errors say
    path: Path   # where it lies in the request's temporary folder


async def receive(request: web.Request, folder: Path, limits: Limits) -> tuple[list[Upload], dict]:
    """Stream a multipart request's ``file`` parts into ``folder`` (one subfolder each, so two
    uploads may share a name) and return them with its other fields; ``ApiError`` for a body
    that is not multipart, too large, incomplete or without a file."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(415 if request.body_exists else 400,
                       "send the audio as multipart/form-data, field 'file' (curl -F file=@clip.wav ...)")
    if (request.content_length or 0) > limits.max_bytes + CHUNK:   # the headers say so: stop before reading
        raise ApiError(413, f"upload of {request.content_length / 2**20:.1f} MB; the limit is "
                            f"{limits.max_bytes / 2**20:g} MB (serve --max-upload-mb)")
    uploads, fields, total = [], {}, 0
    reader = await request.multipart()
    async for part in reader:
        if part.name != "file":
            raw = b""
            while chunk := await part.read_chunk(MAX_FIELD):
                raw += chunk
                if len(raw) > MAX_FIELD:
                    raise ApiError(400, f"field {part.name!r}: longer than {MAX_FIELD} bytes")
            fields[part.name or ""] = raw.decode("utf-8", "replace")
            continue
        if len(uploads) == limits.max_files:
            raise ApiError(413, f"more than {limits.max_files} files in one request; send them in batches")
        upload = Upload(safe_name(part.filename, len(uploads)), folder / str(len(uploads)))
        upload.path.mkdir()
        upload.path = upload.path / upload.name
        with open(upload.path, "wb") as out:
            while chunk := await part.read_chunk(CHUNK):
                total += len(chunk)
                if total > limits.max_bytes:
                    raise ApiError(413, f"{upload.name}: the upload is over the limit of "
                                        f"{limits.max_bytes / 2**20:g} MB (serve --max-upload-mb)")
                out.write(chunk)
        uploads.append(upload)
    if not uploads:
        raise ApiError(400, "no audio: send a file in the form field 'file'")
    return uploads, fields


def check_upload(upload: Upload, limits: Limits) -> None:
    """Refuse, before any decoding, an empty file, a copy cut short (the header promises more
    than it holds) and a recording longer than ``limits.max_seconds``."""
    if upload.path.stat().st_size == 0:
        raise ApiError(422, f"{upload.name}: empty file")
    cut = audio.truncation(upload.path)
    if cut:
        raise ApiError(422, f"{upload.name}: {cut}; an incomplete copy: upload the whole file")
    seconds = audio.duration(upload.path)
    if seconds is not None and seconds > limits.max_seconds:
        raise ApiError(413, f"{upload.name}: {seconds:.0f} s long; the limit is {limits.max_seconds:g} s "
                            "(serve --max-seconds; or `python -m ser predict --segment` for long recordings)")


def public(message: str, uploads: list[Upload]) -> str:
    """An error message with the uploads' temporary paths replaced by their names."""
    for upload in uploads:
        message = message.replace(str(upload.path), upload.name).replace(str(upload.path.parent) + os.sep, "")
    return message


def answer_uploads(predictor, uploads: list[Upload], options: Options, limits: Limits) -> list[dict]:
    """The JSON rows ``predict --format json`` would print for these files (named as the
    client named them), or ``ApiError`` 422 naming the first file that failed. Runs on the
    server's one model thread: ``Predictor`` is not shared between threads."""
    for upload in uploads:
        check_upload(upload, limits)
    results = predictor.analyse([u.path for u in uploads], segment_s=options.segment, grouping=options.speaker,
                                progress=False)
    failed = [r.error for r in results if r.error]
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise ApiError(422, public(failed[0], uploads) + more)
    for result, upload in zip(results, uploads):
        result.path = upload.name
    return json_rows(results, predictor.classes, min(options.top_k, len(predictor.classes)),
                     predictor.bundle["calibration"]["uncertain_below"], segmented=bool(options.segment))


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
                    uploads, fields = await receive(request, Path(folder), limits)
            except TimeoutError:
                raise ApiError(408, f"the upload did not arrive within {limits.upload_timeout_s:g} s") from None
            except (ValueError, ConnectionError, asyncio.IncompleteReadError) as err:
                raise ApiError(400, f"incomplete or malformed upload ({type(err).__name__})") from None
            received = time.perf_counter()
            options = parse_options({**request.query, **fields})
            work = partial(answer_uploads, state["predictor"], uploads, options, limits)
            loop = asyncio.get_running_loop()
            try:
                body = await loop.run_in_executor(state["model_thread"], work)
            finally:   # the next request's set-up, in the model thread while it waits: not awaited
                with contextlib.suppress(RuntimeError):   # the thread is shutting down: no next request
                    loop.run_in_executor(state["model_thread"], state["predictor"].prepare)
            answered = time.perf_counter()
    finally:
        state["pending"] -= 1
    elapsed_ms = (time.perf_counter() - started) * 1000
    if not state["quiet"]:
        print(f"{request.remote} POST {request.path_qs} 200 ({len(uploads)} file{'s' if len(uploads) != 1 else ''}, "
              f"{elapsed_ms:.0f} ms)", file=sys.stderr, flush=True)
    # Where the time went: receiving the upload, waiting for and running the model, in all.
    timing = (f"receive;dur={(received - started) * 1000:.1f}, analyse;dur={(answered - received) * 1000:.1f}, "
              f"total;dur={elapsed_ms:.1f}")
    return web.json_response(body, headers={"Server-Timing": timing})


async def info_handler(request: web.Request) -> web.Response:
    """What the page needs to know: classes and their colours, the limits, the model."""
    state = request.app[STATE]
    predictor, limits = state["predictor"], state["limits"]
    return web.json_response({
        "model": str(predictor.model_dir), "backend": predictor.backend, "classes": predictor.classes,
        "colors": emotion_colors(predictor.classes), "normalize": predictor.bundle["normalize"]["mode"],
        "uncertain_below": predictor.bundle["calibration"]["uncertain_below"], "extensions": list(AUDIO_EXTENSIONS),
        "limits": {"max_bytes": limits.max_bytes, "max_seconds": limits.max_seconds, "max_files": limits.max_files,
                   "min_segment_s": MIN_SEGMENT_S}})


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
                  "model_thread": ThreadPoolExecutor(max_workers=1, thread_name_prefix="ser-model")}
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
