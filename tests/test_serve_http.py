"""``python -m ser serve`` against hostile HTTP, sent as raw bytes over a socket: requests its
HTTP parser rejects (duplicate Host, an oversized header, Content-Length with Transfer-Encoding)
and multipart bodies with malformed parts or control characters in a filename. Every one is a
4xx with ``{"error": "one line"}`` naming the culprit, and one line on the server's console,
never a traceback."""

import json
import socket

import pytest

from .conftest import running_server

pytestmark = pytest.mark.slow   # every test talks to one serve subprocess


@pytest.fixture(scope="module")
def server(egemaps_model, tmp_path_factory):
    """One server for the module: its port, its TMPDIR (checked empty) and its stderr."""
    tmpdir = tmp_path_factory.mktemp("serve_http_tmp")
    log = tmp_path_factory.mktemp("serve_http_log") / "serve.err"
    with running_server(egemaps_model, "--upload-timeout", "5", tmpdir=tmpdir, log=log) as url:
        yield int(url.rstrip("/").rsplit(":", 1)[1]), tmpdir, log


def exchange(port: int, data: bytes) -> tuple[int, dict, bytes]:
    """Send ``data`` as is and read the answer until the server closes: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(1 << 16):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def request(port: int, head: str, body: bytes = b"", host: str | None = None) -> bytes:
    host = host or f"127.0.0.1:{port}"
    return f"{head}\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("latin-1") + body


def form(port: int, body: str | bytes, content_type: str = "multipart/form-data; boundary=B") -> bytes:
    body = body.encode() if isinstance(body, str) else body
    return request(port, f"POST /api/predict HTTP/1.1\r\nContent-Type: {content_type}\r\n"
                         f"Content-Length: {len(body)}", body)


def part(headers: str, content: str = "xx") -> str:
    return f"--B\r\n{headers}\r\n\r\n{content}\r\n"


def file_part(filename: str) -> str:
    return part(f'Content-Disposition: form-data; name="file"; filename="{filename}"')


END = "--B--\r\n"


def check(server, data: bytes, status: int, *words: str) -> str:
    """Send ``data``; the answer is ``status`` with a one-line JSON error holding ``words``, and
    the console got one line for it, no traceback. Returns the error."""
    port, _, log = server
    before = log.read_text(errors="replace")
    code, headers, body = exchange(port, data)
    error = json.loads(body)["error"]
    assert (code, headers["content-type"].split(";")[0]) == (status, "application/json"), (code, headers, body)
    assert error and "\n" not in error and "\r" not in error and "\x00" not in error and "Traceback" not in error
    for word in words:
        assert word in error, (word, error)
    console = log.read_text(errors="replace")[len(before):]
    assert "Traceback" not in console and "Warning" not in console, console
    assert console.count("\n") == 1 and console.endswith("\n") and str(status) in console, console
    return error


# --- #15: refused by aiohttp's HTTP parser, before any handler or middleware -------------------

def test_a_duplicate_host_header_is_a_json_400(server):
    port = server[0]
    data = request(port, f"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1:{port}")
    check(server, data, 400, "Duplicate 'Host' header")


def test_a_header_over_8190_bytes_is_a_json_431(server):
    port = server[0]
    error = check(server, request(port, f"GET /api/info HTTP/1.1\r\nX-Big: {'a' * 9000}"), 431, "8190 bytes")
    assert len(error) < 300


def test_too_many_headers_or_a_long_request_line_is_a_json_431(server):
    port = server[0]
    check(server, request(port, "GET /api/info HTTP/1.1" + "\r\nX-A: b" * 200), 431, "Too many headers")
    check(server, request(port, f"GET /api/info?{'a' * 9000} HTTP/1.1"), 431, "8190 bytes")


def test_content_length_with_transfer_encoding_is_a_json_400(server):
    port = server[0]
    data = request(port, "POST /api/predict HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked", b"0\r\n\r\n")
    check(server, data, 400, "Transfer-Encoding", "Content-Length")


def test_a_broken_chunked_body_is_a_json_400(server):
    port = server[0]
    data = request(port, "POST /api/predict HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=B\r\n"
                         "Transfer-Encoding: chunked", b"5\r\n--B\r\n\r\nzz\r\n")
    check(server, data, 400, "chunk")


def test_a_control_character_in_the_path_is_escaped(server):
    port = server[0]
    error = check(server, request(port, "GET /api/%0Ax%00y HTTP/1.1"), 404, "Not Found: GET /api/\\nx\\x00y")
    assert error == "Not Found: GET /api/\\nx\\x00y"


# --- #14: malformed multipart bodies ------------------------------------------------------------

@pytest.mark.parametrize("body, words", [
    (part("garbage line without a colon") + END, ["part 1", "garbage line"]),
    (file_part("a.wav") + part("Content-Type: text/plain") + END, ["part 2", "Content-Disposition"]),
    (part("Content-Disposition: form-data") + END, ["part 1", "no name"]),
    (part('Content-Disposition: form-data; filename="a.wav"') + END, ["part 1", "no name"]),
    (part("Content-Disposition: ;;;==") + END, ["part 1", "no name"]),
    (part("Content-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nX-Big: " + "a" * 20000) + END,
     ["part 1", "8190 bytes"]),
    (part("Content-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n" + "X-A: b\r\n" * 200) + END,
     ["part 1", "Too many headers"]),
    (part('Content-Disposition: form-data; name="file"\r\nContent-Type: multipart/mixed; boundary=C',
          "--C\r\nContent-Type: text/plain\r\n\r\nx\r\n--C--") + END, ["part 1", "multipart"]),
    (part('Content-Disposition: form-data; name="_charset_"', "x" * 40) + file_part("a.wav") + END,
     ["part 1", "charset"]),
], ids=["header-without-colon", "no-content-disposition", "no-name", "filename-but-no-name",
        "garbage-content-disposition", "huge-part-header", "too-many-part-headers", "nested-multipart",
        "bad-charset"])
def test_malformed_part_headers_are_a_json_400_naming_the_part(server, body, words):
    check(server, form(server[0], body), 400, *words)


@pytest.mark.parametrize("filename", ["a\x00b.wav", "a\rb.wav", "a\nb.wav"], ids=["nul", "cr", "lf"])
def test_a_control_character_in_a_raw_filename_is_a_json_400(server, filename):
    error = check(server, form(server[0], file_part(filename) + END), 400, "part 1")
    assert filename not in error


@pytest.mark.parametrize("encoded", ["a%00b.wav", "a%0Db.wav", "a%0Ab.wav"], ids=["nul", "cr", "lf"])
def test_a_control_character_in_an_encoded_filename_is_a_json_400(server, encoded):
    """``filename*`` (RFC 5987) decodes to the control character itself."""
    body = part(f"Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''{encoded}") + END
    error = check(server, form(server[0], body), 400, "part 1", "file", "control character")
    assert "\\x00" in error or "\\r" in error or "\\n" in error


@pytest.mark.parametrize("body, content_type, words", [
    ("--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nxxxx", None,
     ["part 1 (a.wav)", "closing boundary"]),
    ("--B\r\nContent-Disposition: form-data; name=\"file\"", None, ["part 1"]),
    (file_part("a.wav"), None, ["part 1", "closing boundary"]),
    (file_part("a.wav") + END, "multipart/form-data", ["boundary"]),
    (file_part("a.wav").replace("--B", "--C") + "--C--\r\n", None, ["boundary"]),
    ("", None, ["boundary"]),
], ids=["truncated-content", "truncated-headers", "never-closed", "no-boundary-parameter", "wrong-boundary", "empty"])
def test_a_malformed_multipart_body_is_a_json_400_naming_where(server, body, content_type, words):
    check(server, form(server[0], body, content_type or "multipart/form-data; boundary=B"), 400,
          "malformed upload", *words)


def test_a_filename_too_long_for_the_filesystem_is_only_a_label(server):
    """130 four-byte characters: a label cut to what a file name may hold, never an OSError."""
    code, _, body = exchange(server[0], form(server[0], file_part("\U0001F600" * 130 + ".wav") + END))
    [row] = json.loads(body)   # the file's own problem: an error row in a 200 answer
    assert code == 200 and row["result"] == "error" and "cannot decode audio" in row["error"]
    name = row["error"].split(":")[0]
    assert name.endswith(".wav") and len(name.encode()) <= 200 and "ser-serve-" not in row["error"]


def test_uploads_leave_nothing_behind(server):
    assert list(server[1].iterdir()) == []
