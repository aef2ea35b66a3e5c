"""Raw-socket HTTP probing for the local runtime's ports: build exact bytes, read every response, spot leaks.

The probes talk to 127.0.0.1 only, through plain sockets (no client library that would normalise the framing under
test), with a deadline on every read. ``exchange`` returns every response that came back on one connection, so a
smuggled second request shows up as a second parsed response (or as bytes left over after the first).
"""

from __future__ import annotations

import base64
import json
import random
import re
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

HOST = "127.0.0.1"
REGION = "us-east-1"
REPO_ROOT = Path(__file__).resolve().parents[4]
EVENTS_DIR = REPO_ROOT / "tests" / "events"
Headers = list[tuple[str, str]]

# ------------------------------------------------------------------------------------------------ raw exchanges


@dataclass
class Response:
    """One HTTP response as it came off the wire."""

    status: int
    reason: str
    version: str
    headers: Headers
    body: bytes

    def header(self, name: str) -> str | None:
        """Last value of a header, case-insensitively."""
        found = None
        for key, value in self.headers:
            if key.lower() == name.lower():
                found = value
        return found

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def text(self) -> str:
        """The body as text (latin-1: every byte maps, nothing raises)."""
        return self.body.decode("latin-1")


@dataclass
class Exchange:
    """Everything one connection gave back."""

    responses: list[Response]
    raw: bytes
    closed: bool  # the server closed (EOF or reset) before the read deadline
    leftover: bytes  # bytes after the last complete response
    elapsed_s: float

    @property
    def status_lines(self) -> int:
        """Status lines anywhere in what came back: a smuggled response is counted even if it did not parse."""
        return len(re.findall(rb"HTTP/\d\.\d \d{3} ", self.raw))

    @property
    def first(self) -> Response:
        assert self.responses, f"no response came back (raw={self.raw[:300]!r}, closed={self.closed})"
        return self.responses[0]


def _parse_one(buffer: bytes, closed: bool, head_request: bool = False) -> tuple[Response, int] | None:
    """Parse the first complete response in ``buffer``; None while it is incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buffer[:end].decode("latin-1").split("\r\n")
    match = re.fullmatch(r"(HTTP/\d\.\d) (\d{3})(?: (.*))?", lines[0])
    if match is None:
        raise ValueError(f"not an HTTP status line: {lines[0]!r}")
    headers: Headers = []
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers.append((key.strip(), value.strip()))
    response = Response(int(match.group(2)), match.group(3) or "", match.group(1), headers, b"")
    start = end + 4
    if head_request or response.status in (204, 304) or 100 <= response.status < 200:
        return response, start
    if "chunked" in (response.header("Transfer-Encoding") or "").lower():
        body = b""
        pos = start
        while True:
            line_end = buffer.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(buffer[pos:line_end].split(b";", 1)[0], 16)
            pos = line_end + 2
            if size == 0:
                trailer_end = buffer.find(b"\r\n", pos)
                if trailer_end < 0:
                    return None
                response.body = body
                return response, trailer_end + 2
            if len(buffer) < pos + size + 2:
                return None
            body += buffer[pos : pos + size]
            pos += size + 2
    length = response.header("Content-Length")
    if length is None:  # no framing: the body runs to EOF
        if not closed:
            return None
        response.body = buffer[start:]
        return response, len(buffer)
    if len(buffer) < start + int(length):
        return None
    response.body = buffer[start : start + int(length)]
    return response, start + int(length)


def parse_responses(raw: bytes, closed: bool, head_request: bool = False) -> tuple[list[Response], bytes]:
    """Every complete response in ``raw`` and the bytes left after the last one."""
    responses: list[Response] = []
    rest = raw
    while rest:
        parsed = _parse_one(rest, closed, head_request)
        if parsed is None:
            break
        response, used = parsed
        responses.append(response)
        rest = rest[used:]
    return responses, rest


def exchange(
    port: int,
    data: bytes | Sequence[bytes],
    *,
    timeout_s: float = 5.0,
    quiet_s: float = 0.4,
    head_request: bool = False,
    expect: int = 1,
) -> Exchange:
    """Send ``data`` on a fresh connection and collect what comes back.

    Reading stops at EOF, at ``timeout_s``, or ``quiet_s`` after ``expect`` complete responses arrived with nothing
    more following (so a second, smuggled response still has time to show up).

    Args:
        port: the port on 127.0.0.1.
        data: the bytes to send (a sequence: sent piece by piece).
        timeout_s: the overall deadline.
        quiet_s: how long to keep listening once ``expect`` responses are complete.
        head_request: the request was a HEAD (responses carry no body).
        expect: how many responses a correct server sends.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    raw = b""
    closed = False
    with socket.create_connection((HOST, port), timeout=timeout_s) as sock:
        try:
            for piece in [data] if isinstance(data, bytes) else data:
                sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            closed = True  # the server refused part of it and closed; read what it answered
        quiet_until: float | None = None
        while not closed:
            now = time.monotonic()
            limit = deadline if quiet_until is None else min(deadline, quiet_until)
            if now >= limit:
                break
            sock.settimeout(max(0.01, limit - now))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            raw += chunk
            done, _ = parse_responses(raw, False, head_request)
            quiet_until = time.monotonic() + quiet_s if len(done) >= expect else None
    responses, leftover = parse_responses(raw, closed, head_request)
    return Exchange(responses, raw, closed, leftover, time.monotonic() - started)


def build_request(method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes = b"") -> bytes:
    """The request's bytes exactly as given (no header added, none normalised)."""
    head = f"{method} {target} HTTP/1.1\r\n".encode("latin-1")
    for key, value in headers:
        head += key.encode("latin-1") + b": " + value.encode("latin-1") + b"\r\n"
    return head + b"\r\n" + body


def chunked(body: bytes, sizes: Sequence[int] = ()) -> bytes:
    """``body`` in correct chunked encoding (split at ``sizes``, else one chunk), with the last-chunk."""
    out = b""
    pos = 0
    for size in [*sizes, len(body)]:
        piece = body[pos : pos + size] if size else b""
        if piece:
            out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        pos += len(piece)
        if pos >= len(body):
            break
    return out + b"0\r\n\r\n"


# ------------------------------------------------------------------------------------------------ signing


@dataclass(frozen=True)
class Signer:
    """SigV4 for raw requests, with the runtime's credentials (no session token)."""

    access_key_id: str
    secret_access_key: str

    def headers(self, service: str, method: str, port: int, target: str, headers: Headers, body: bytes) -> Headers:
        """``headers`` plus Host, X-Amz-Date and Authorization (and S3's payload hash) for this exact request."""
        url = f"http://{HOST}:{port}{target}"
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        credentials = Credentials(self.access_key_id, self.secret_access_key)
        if service == "s3":
            request.context["payload_signing_enabled"] = True
            S3SigV4Auth(credentials, "s3", REGION).add_auth(request)
        else:
            SigV4Auth(credentials, service, REGION).add_auth(request)
        signed: Headers = [("Host", f"{HOST}:{port}")]
        signed += [(k, v) for k, v in request.headers.items() if k.lower() != "host"]
        return signed

    def request(self, service: str, method: str, port: int, target: str, headers: Headers, body: bytes = b"") -> bytes:
        """A complete signed request with a correct Content-Length."""
        signed = self.headers(service, method, port, target, headers, body)
        if not any(k.lower() == "content-length" for k, _ in signed) and (body or method in ("POST", "PUT")):
            signed.append(("Content-Length", str(len(body))))
        return build_request(method, target, signed, body)


# ------------------------------------------------------------------------------------------------ /proc


def proc_status(pid: int) -> dict[str, str]:
    """``/proc/<pid>/status`` as a dict."""
    out: dict[str, str] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def rss_kb(pid: int) -> int:
    """Resident set size (VmRSS) in kB."""
    return int(proc_status(pid)["VmRSS"].split()[0])


def hwm_kb(pid: int) -> int:
    """Peak resident set size since the last ``reset_peak_rss`` (VmHWM) in kB."""
    return int(proc_status(pid)["VmHWM"].split()[0])


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > /proc/<pid>/clear_refs``); False where the kernel refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def thread_count(pid: int) -> int:
    """Threads of a process (``/proc/<pid>/status``)."""
    return int(proc_status(pid)["Threads"])


# ------------------------------------------------------------------------------------------------ leaks

# A Python exception class name followed by its message ("ValueError: ...", "UnicodeDecodeError: ...").
EXCEPTION_COLON = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:Error|Exception)\s*:")
# Python's own exception classes, anywhere (AWS error codes such as ValidationError are not among them).
PYTHON_EXCEPTIONS = re.compile(
    r"\b(?:ArithmeticError|AssertionError|AttributeError|BlockingIOError|BrokenPipeError|BufferError|"
    r"ConnectionError|ConnectionResetError|EOFError|FileNotFoundError|FloatingPointError|ImportError|"
    r"IndentationError|IndexError|IsADirectoryError|JSONDecodeError|KeyError|LookupError|MemoryError|"
    r"ModuleNotFoundError|NameError|NotADirectoryError|NotImplementedError|OSError|OverflowError|PermissionError|"
    r"RecursionError|ReferenceError|RuntimeError|StopIteration|SyntaxError|SystemError|TabError|TypeError|"
    r"UnboundLocalError|UnicodeDecodeError|UnicodeEncodeError|UnicodeError|ValueError|ZeroDivisionError|"
    r"UnidentifiedImageError|DecompressionBombError|binascii\.Error|struct\.error|zlib\.error)\b"
)
LEAK_MARKERS = ("Traceback", 'File "/', '.py"', "/work/", "site-packages", "<class '", " object at 0x")


def leaks(response: Response, extra_markers: Iterable[str] = ()) -> list[str]:
    """What in a response's body or header values looks like an internal detail (empty: nothing)."""
    found: list[str] = []
    texts = [response.text, *(value for _, value in response.headers)]
    for text in texts:
        for marker in (*LEAK_MARKERS, *extra_markers):
            if marker and marker in text:
                found.append(f"{marker!r} in {text[:200]!r}")
        for rx in (EXCEPTION_COLON, PYTHON_EXCEPTIONS):
            match = rx.search(text)
            if match:
                found.append(f"{match.group(0)!r} in {text[:200]!r}")
    return found


# ------------------------------------------------------------------------------------------------ corpora


@dataclass(frozen=True)
class CorpusCase:
    """One bad (or good) input from ``tests/events/apigw_predict_*.json``, as the bytes a client sends."""

    name: str
    body: bytes
    content_type: str | None
    accept: str | None
    query: dict[str, str]


def predict_corpus() -> list[CorpusCase]:
    """Every ``apigw_predict_*.json`` event's request: body decoded as the event says (base64 or text)."""
    cases: list[CorpusCase] = []
    for path in sorted(EVENTS_DIR.glob("apigw_predict_*.json")):
        event = json.loads(path.read_text())
        raw = event.get("body") or ""
        body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        cases.append(
            CorpusCase(
                path.stem,
                body,
                headers.get("content-type"),
                headers.get("accept"),
                dict(event.get("queryStringParameters") or {}),
            )
        )
    return cases


def corpus_image(name: str) -> bytes:
    """The decoded body of one corpus event (e.g. ``apigw_predict_jpeg``)."""
    return next(case.body for case in predict_corpus() if case.name == name)


# ------------------------------------------------------------------------------------------------ fuzzing

CONTENT_TYPES: tuple[str | None, ...] = (
    None,
    "",
    "image/jpeg",
    "image/png",
    "application/x-image",
    "image/jpg",
    "application/json",
    "text/csv",
    "application/x-npy",
    "text/plain",
    "application/octet-stream",
    "image/gif",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
    "IMAGE/JPEG",
    "image/png;;;",
    "*/*",
    "image/",
    "/",
    ";",
    "a" * 300,
    "application/json\x7f",
    "imágé/jpeg",
    "image/jpeg, image/png",
)
ACCEPTS: tuple[str | None, ...] = (
    None,
    "",
    "*/*",
    "application/json",
    "text/csv",
    "image/png",
    "application/x-npy",
    "text/html, */*;q=0.1",
    "application/json;q=0",
    "garbage",
    ",,,",
    "a/" * 100,
    "ápplication/json",
)


@dataclass
class FuzzBodies:
    """Seeded generators of hostile bodies around the images of the corpus."""

    rng: random.Random
    jpeg: bytes
    png: bytes
    corpus: list[bytes] = field(default_factory=list)

    def image_like(self) -> bytes:
        """A corrupted, truncated or resized-header JPEG/PNG."""
        base = self.rng.choice((self.jpeg, self.png))
        kind = self.rng.randrange(6)
        if kind == 0:  # truncated anywhere, header included
            return base[: self.rng.randrange(0, min(len(base), 400))]
        if kind == 1:  # bit flips
            data = bytearray(base)
            for _ in range(self.rng.randrange(1, 16)):
                data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)
            return bytes(data)
        if kind == 2 and base is self.png:  # PNG header claiming a huge or zero size
            width, height = self.rng.choice(((0, 0), (1, 1), (2**31 - 1, 1), (100_000, 100_000), (7, 9000)))
            return base[:16] + width.to_bytes(4, "big") + height.to_bytes(4, "big") + base[24:]
        if kind == 3:  # the magic, then noise
            return base[:8] + self.rng.randbytes(self.rng.randrange(0, 2000))
        if kind == 4:  # a valid image with trailing garbage
            return base + self.rng.randbytes(self.rng.randrange(1, 500))
        return base[: len(base) // 2] + base[len(base) // 2 :][::-1]

    def json_like(self) -> bytes:
        """JSON that is almost what the model accepts, or not JSON at all."""
        image = base64.b64encode(self.image_like()).decode()
        choices: list[Any] = [
            {"image": image},
            {"images": [image] * self.rng.randrange(0, 20)},
            {"image": image, "top_k": self.rng.choice((0, -1, 10**12, "3", None, True, 2.5, [], {}))},
            {"image": self.rng.choice((123, None, [], {}, "", "http://127.0.0.1/x", "data:,", "!!!", "A" * 10))},
            {"images": self.rng.choice(("x", 3, [1, 2], [None], {}))},
            {"image": image, "images": [image]},
            [image],
            "image",
            None,
            {"a" * 1000: "b"},
        ]
        doc = self.rng.choice(choices)
        text = json.dumps(doc)
        mode = self.rng.randrange(5)
        if mode == 0:
            return text.encode()[: self.rng.randrange(0, len(text) + 1)]
        if mode == 1:
            return text.encode("utf-16")
        if mode == 2:
            return b"\xff\xfe" + text.encode() + b"\xc3\x28"
        return text.encode()

    def body(self) -> bytes:
        """One body: random bytes, non-UTF-8 text, image-like, JSON-like, CSV/NPY-ish, or a corpus body."""
        kind = self.rng.randrange(8)
        if kind == 0:
            return self.rng.randbytes(self.rng.randrange(0, 4096))
        if kind == 1:
            return bytes(
                self.rng.choice((0x80, 0xC3, 0xFF, 0xFE, 0xED, 0xA0)) for _ in range(self.rng.randrange(1, 64))
            )
        if kind in (2, 3):
            return self.image_like()
        if kind in (4, 5):
            return self.json_like()
        if kind == 6:
            return self.rng.choice((b"1,2,3\n4,5", b"\x93NUMPY\x01\x00v\x00{'descr': '<f4'", b"", b"\x00" * 100))
        return self.rng.choice(self.corpus) if self.corpus else b""

    def content_type(self) -> str | None:
        """A Content-Type value, or None for none at all."""
        return self.rng.choice(CONTENT_TYPES)

    def accept(self) -> str | None:
        """An Accept value, or None for none at all."""
        return self.rng.choice(ACCEPTS)


def with_optional(headers: Headers, name: str, value: str | None) -> Headers:
    """``headers`` plus ``name: value`` unless the value is None (a missing header)."""
    return [*headers, (name, value)] if value is not None else headers


def header_safe(value: str) -> str:
    """A header value waitress will accept on the wire (latin-1, no CR/LF)."""
    return value.encode("latin-1", "replace").decode("latin-1").replace("\r", "").replace("\n", "")


# ------------------------------------------------------------------------------------------------ fuzz requests

RANDOM_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO", "get", "M-SEARCH")
SAGEMAKER_READ_OPS = (
    "DescribeEndpoint",
    "DescribeEndpointConfig",
    "DescribeModel",
    "ListEndpoints",
    "ListModels",
    "DescribeTrainingJob",
    "ListTrainingJobs",
    "NoSuchOperation",
    "",
)
GARBAGE_AUTH = (
    "AWS4-HMAC-SHA256",
    "AWS4-HMAC-SHA256 Credential=",
    "AWS4-HMAC-SHA256 Credential=AKIA/2020/us-east-1/s3",
    "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/sagemaker/aws4_request, SignedHeaders=host, "
    "Signature=00",
    "Bearer x",
    "AWS AKIA:sig",
    "\xff\xfe",
    "a" * 2000,
    "AWS4-HMAC-SHA256 ,,,,=,=,",
    "AWS4-HMAC-SHA256 Credential=\xe9/\xe9/\xe9/\xe9/\xe9, SignedHeaders=\xe9, Signature=\xe9",
)


@dataclass
class FuzzRequest:
    """One fuzzed request: its bytes and what it was, for the failure report."""

    label: str
    data: bytes
    head: bool = False


def _random_path(rng: random.Random, endpoint: str) -> str:
    """A request target: real routes, near misses, traversal, absolute-form, overlong."""
    return rng.choice(
        (
            "/",
            "/ping",
            "/invocations",
            "/predict",
            "/health",
            f"/endpoints/{endpoint}/invocations",
            "/endpoints//invocations",
            "/endpoints/%ff/invocations",
            "/%2e%2e/%2e%2e/etc/passwd",
            "/" + "a" * 3000,
            "/predict?top_k=" + rng.choice(("0", "-1", "abc", "99999999999999999999", "%ff", "1&top_k=2")),
            "/moto-api/reset",
            "/?list-type=2",
            "//predict",
            "/predict/",
            "/PREDICT",
            "/health;x",
            "*",
            "http://127.0.0.1/predict",
            f"/endpoints/{endpoint}/invocations?x=%zz",
        )
    )


def container_request(rng: random.Random, bodies: FuzzBodies) -> FuzzRequest:
    """A request for a model container: mostly ``POST /invocations`` with a hostile body and headers."""
    if rng.random() < 0.08:
        method, path = rng.choice(RANDOM_METHODS), _random_path(rng, "x")
    else:
        method, path = "POST", "/invocations"
    body = bodies.body()
    headers: Headers = [("Host", "127.0.0.1")]
    headers = with_optional(headers, "Content-Type", bodies.content_type())
    headers = with_optional(headers, "Accept", bodies.accept())
    if rng.random() < 0.1:
        headers.append(("X-Amzn-SageMaker-Custom-Attributes", header_safe(rng.randbytes(40).decode("latin-1"))))
    headers.append(("Content-Length", str(len(body))))
    return FuzzRequest(
        f"container {method} {path[:60]} {headers[1:3]} body={body[:24]!r}",
        build_request(method, path, headers, body),
        head=method == "HEAD",
    )


def edge_request(
    rng: random.Random, bodies: FuzzBodies, signer: Signer, port: int, endpoint: str, bucket: str
) -> FuzzRequest:
    """A request for the AWS edge: signed InvokeEndpoint and SageMaker/S3 read calls, unsigned and forged ones."""
    kind = rng.random()
    if kind < 0.45:  # signed InvokeEndpoint with a hostile body
        name = endpoint if rng.random() < 0.9 else rng.choice(("nope", "a" * 70, "%ff", "dogbreed-dev%2f..", "-"))
        path = f"/endpoints/{name}/invocations"
        body = bodies.body()
        headers: Headers = []
        headers = with_optional(headers, "Content-Type", bodies.content_type())
        headers = with_optional(headers, "Accept", bodies.accept())
        if rng.random() < 0.05:
            headers.append(("X-Amzn-SageMaker-Target-Variant", rng.choice(("AllTraffic", "nope", ""))))
        if rng.random() < 0.05:
            headers.append(("X-Amzn-SageMaker-Custom-Attributes", "a" * rng.randrange(1, 2000)))
        headers = [(k, header_safe(v)) for k, v in headers]
        return FuzzRequest(
            f"edge invoke {path} {headers[:2]} body={body[:24]!r}",
            signer.request("sagemaker", "POST", port, path, headers, body),
        )
    if kind < 0.6:  # signed SageMaker control-plane read call with a garbage body
        op = rng.choice(SAGEMAKER_READ_OPS)
        body = rng.choice((bodies.json_like(), bodies.body(), b"{}", b'{"EndpointName": ' + bodies.json_like() + b"}"))
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", f"SageMaker.{op}")]
        return FuzzRequest(
            f"edge sagemaker {op} body={body[:40]!r}", signer.request("sagemaker", "POST", port, "/", headers, body)
        )
    if kind < 0.7:  # signed S3 read of a random key or listing (no subresource the local S3 does not implement)
        key = rng.choice(
            (
                "",
                "x",
                "%ff%fe",
                "a/" * 50,
                "..%2f..%2fetc",
                "model.tar.gz",
                "?list-type=2&max-keys=-1",
                "?list-type=2&prefix=%00",
                "?list-type=2&continuation-token=%ff",
                "?max-keys=abc",
            )
        )
        target = f"/{bucket}/{key}" if not key.startswith("?") else f"/{bucket}{key}"
        method = rng.choice(("GET", "HEAD"))
        headers = (
            [("Range", rng.choice(("bytes=0-1", "bytes=z", "bytes=-0", "bytes=99999999999-")))]
            if rng.random() < 0.3
            else []
        )
        return FuzzRequest(
            f"edge s3 {method} {target}", signer.request("s3", method, port, target, headers), head=method == "HEAD"
        )
    # unsigned, or signed with garbage
    method = rng.choice(RANDOM_METHODS)
    path = _random_path(rng, endpoint)
    body = bodies.body() if method not in ("GET", "HEAD") else b""
    headers = [("Host", f"{HOST}:{port}")]
    if rng.random() < 0.6:
        headers.append(("Authorization", header_safe(rng.choice(GARBAGE_AUTH))))
    if rng.random() < 0.4:
        headers.append(
            (
                "X-Amz-Target",
                rng.choice(
                    (
                        "SageMaker.ListModels",
                        "AWSStepFunctions.ListStateMachines",
                        "Logs_20140328.DescribeLogGroups",
                        "\xe9",
                        "x" * 500,
                    )
                ),
            )
        )
    if rng.random() < 0.3:
        headers.append(("X-Amz-Date", rng.choice(("20200101T000000Z", "garbage", "99999999T999999Z", ""))))
    headers = with_optional(headers, "Content-Type", bodies.content_type())
    headers.append(("Content-Length", str(len(body))))
    headers = [(k, header_safe(v)) for k, v in headers]
    return FuzzRequest(
        f"edge unsigned {method} {path[:60]} {headers[1:3]}",
        build_request(method, path, headers, body),
        head=method == "HEAD",
    )


def api_request(rng: random.Random, bodies: FuzzBodies, signer: Signer, port: int, signed: bool) -> FuzzRequest:
    """A request for the REST API: signed ``POST /predict`` with a hostile body, or an unsigned/forged request."""
    if signed:
        query = rng.choice(("", "?top_k=1", "?top_k=0", "?top_k=abc", "?top_k=10", "?top_k=%ff", "?x=1&top_k=3"))
        body = bodies.body()
        headers: Headers = []
        headers = with_optional(headers, "Content-Type", bodies.content_type())
        headers = with_optional(headers, "Accept", bodies.accept())
        headers = [(k, header_safe(v)) for k, v in headers]
        target = f"/predict{query}"
        return FuzzRequest(
            f"api signed POST {target} {headers} body={body[:24]!r}",
            signer.request("execute-api", "POST", port, target, headers, body),
        )
    method = rng.choice((*RANDOM_METHODS, "POST", "POST"))
    path = _random_path(rng, "x")
    body = bodies.body() if method not in ("GET", "HEAD") else b""
    headers = [("Host", f"{HOST}:{port}")]
    if rng.random() < 0.5:
        headers.append(("Authorization", header_safe(rng.choice(GARBAGE_AUTH).replace("sagemaker", "execute-api"))))
    headers = with_optional(headers, "Content-Type", bodies.content_type())
    headers = with_optional(headers, "Accept", bodies.accept())
    headers.append(("Content-Length", str(len(body))))
    headers = [(k, header_safe(v)) for k, v in headers]
    return FuzzRequest(
        f"api unsigned {method} {path[:60]} {headers[1:3]}",
        build_request(method, path, headers, body),
        head=method == "HEAD",
    )
