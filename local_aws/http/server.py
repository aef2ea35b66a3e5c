"""The one HTTP server every local service runs on: waitress, bound to 127.0.0.1, with AWS-shaped transport errors.

NOTE: waitress was chosen over werkzeug's dev server (what moto's ThreadedMotoServer uses) because it parses
strictly where the local services must: Content-Length must be digits (``-1`` and ``abc`` are 400, never "read to
EOF" or "treat as 0"); the only Transfer-Encoding it accepts is ``chunked``, which it de-chunks and validates before the
app sees a byte, so a body can never be read as a second request (no smuggling); a declared body over the limit is
refused right after the headers, unread; idle and stalled connections are closed after ``idle_timeout_s``; and
connections cost no thread while they wait (asyncore channels), so slow clients cannot pin the worker threads.
It is pure Python and runs in-process with a clean start/stop on an ephemeral port (local-aws-building-blocks.md §5).

Transport errors (bad framing, oversize bodies, an app that raises) are rendered by the service's own
``ErrorRenderer``, so an S3 client gets S3's XML, a JSON-protocol client ``{"__type", "message"}`` and an API caller
API Gateway's ``{"message"}``; waitress's own plain-text pages (and tracebacks) never reach a client.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.receiver import ChunkedReceiver
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, WSGITask
from waitress.utilities import BadRequest, RequestEntityTooLarge

from local_aws.constants import HOST, HTTP_IDLE_TIMEOUT_S

LOGGER = logging.getLogger("local_aws.http")

# (status code, short reason, request headers as waitress parsed them: "AUTHORIZATION", "X_AMZ_TARGET", ...)
#   -> (headers, body)
ErrorRenderer = Callable[[int, str, dict[str, str]], tuple[list[tuple[str, str]], bytes]]
WsgiApp = Callable[..., Any]
# request headers (waitress's names) -> the largest body this request may declare, plus one
BodyLimit = Callable[[dict[str, str]], int]

_JSON_CODES = {
    400: "SerializationException",
    413: "RequestEntityTooLargeException",
    431: "RequestHeaderFieldsTooLargeException",
    500: "InternalFailure",
    501: "NotImplementedException",
}


def port_is_free(port: int) -> bool:
    """Whether ``port`` can be bound on HOST now (0 is always free: the kernel picks one).

    NOTE: probe before building an HttpServer on a fixed port: a waitress server that fails to bind has already
    started its request threads and opened its wake-up pipe, and leaves them behind (8 threads, 4 fds measured). The
    port can still be taken between the probe and the bind; the bind then fails as usual.
    """
    if port == 0:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def json_error_renderer(status: int, reason: str, headers: dict[str, str]) -> tuple[list[tuple[str, str]], bytes]:
    """AWS JSON protocols: ``{"__type": code, "message": ...}`` plus ``x-amzn-ErrorType`` (botocore reads either)."""
    code = _JSON_CODES.get(status, "InternalFailure")
    if status == 501:
        message = "Not Implemented: the request uses a transfer coding the service does not support."
    elif status >= 500:
        message = "The request processing has failed because of an internal error."
    else:
        message = f"{reason}: the request could not be read."
    body = json.dumps({"__type": code, "message": message}).encode()
    return [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)], body


def message_error_renderer(status: int, reason: str, headers: dict[str, str]) -> tuple[list[tuple[str, str]], bytes]:
    """The model container: ``{"message": ...}``."""
    message = "Internal server error" if status >= 500 and status != 501 else reason
    return [("Content-Type", "application/json")], json.dumps({"message": message}).encode()


class _StrictParser(HTTPRequestParser):
    """waitress's parser, stricter where a disagreement between two framings could smuggle a request.

    - Content-Length together with Transfer-Encoding: RFC 9112 §6.1 lets a server reject such a message and requires
      it to close the connection; waitress would frame by the chunks and leave the rest of the declared length on
      the connection, where it is read as a second request. Here it is a 400 and the connection closes.
    - A chunk whose declared size alone is over the body limit is refused at once (413), not after its bytes have
      been waited for until the idle timeout.
    """

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        if self.chunked and "CONTENT_LENGTH" in self.headers:
            self.error = BadRequest("Content-Length and Transfer-Encoding cannot both be sent")
            self.completed = True
            self.connection_close = True
            return
        # A service can take less than the server's limit (the AWS edge: S3 takes 5 GB, a JSON API 16 MB); the
        # smaller limit applies as soon as the headers say which service it is, before the body is read.
        # NOTE: only a declared length is checked here. A limit is at least 1 (a largest body plus one), so a request
        # without a body can never exceed it; a chunked one declares none (waitress leaves content_length 0 and sets
        # Content-Length once it has de-chunked the body), and the service checks that length itself.
        limit_for: BodyLimit | None = getattr(self.adj, "body_limit", None)
        if limit_for is not None and self.content_length > 0:
            limit = limit_for(self.headers)  # limit_for only reads the headers: no copy needed
            if self.content_length >= limit:
                self.error = RequestEntityTooLarge(f"exceeds the service's limit of {limit}")
                self.completed = True

    def received(self, data: bytes) -> int:
        consumed: int = super().received(data)
        body = self.body_rcv
        if (
            not self.completed
            and isinstance(body, ChunkedReceiver)
            and body.chunk_remainder + self.body_bytes_received >= self.adj.max_request_body_size
        ):
            self.error = RequestEntityTooLarge(f"exceeds max_body of {self.adj.max_request_body_size}")
            self.completed = True
        return consumed


class _ErrorTask(ErrorTask):
    """waitress's error page, rendered in the service's own error shape (never text/plain, never a traceback)."""

    def execute(self) -> None:
        error = self.request.error
        status = int(getattr(error, "code", 500))
        # NOTE: waitress's error classes carry the standard reason phrase of their code (BadRequest "Bad Request",
        # RequestEntityTooLarge "Request Entity Too Large", ...).
        reason = str(getattr(error, "reason", "Error"))
        if status >= 500:
            LOGGER.error("%s: %s", self.channel.server.service_name, getattr(error, "body", "internal error"))
        headers, body = self.channel.server.error_renderer(status, reason, dict(self.request.headers))
        self.status = f"{status} {reason}"
        self.response_headers.extend(headers)
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _KeepCaseTask(WSGITask):
    """Response header names go out as the app wrote them.

    NOTE: waitress capitalises every header name (``x-amz-meta-project`` → ``X-Amz-Meta-Project``); S3 user metadata
    is reported by botocore with the name as received, so S3 clients would see ``Project`` where S3 says
    ``project``. HTTP header names are case-insensitive, so restoring the app's spelling is always safe.
    """

    def build_response_header(self) -> bytes:
        original = {name.lower(): name for name, _ in self.response_headers}
        raw: bytes = super().build_response_header()
        head, sep, tail = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        for index, line in enumerate(lines[1:], 1):
            name, colon, rest = line.partition(b":")
            kept = original.get(name.decode("latin-1").lower())
            if colon and kept:
                lines[index] = kept.encode("latin-1") + b":" + rest
        return b"\r\n".join(lines) + sep + tail


class _Channel(HTTPChannel):
    parser_class = _StrictParser
    task_class = _KeepCaseTask
    error_task_class = _ErrorTask


class _Server(TcpWSGIServer):
    channel_class = _Channel
    error_renderer: ErrorRenderer
    service_name: str


class HttpServer:
    """One service on ``host:port`` (port 0 picks a free one), served by waitress in a background thread.

    Args:
        app: the WSGI application.
        name: the service's name, for logs and thread names.
        port: the port to bind; 0 for an ephemeral one.
        host: the address to bind; loopback by default and in every caller.
        error_renderer: how transport errors look to this service's clients.
        max_body_bytes: declared bodies at or above this size are refused with 413 before they are read.
        idle_timeout_s: a connection with no traffic for this long is closed (keep-alive idle and stalled reads).
        threads: request-handling threads (connections themselves cost none).
        connection_limit: open connections beyond this wait in the listen backlog.
        body_limit: a smaller limit per request, from its headers (refused unread as well).
    """

    def __init__(
        self,
        app: WsgiApp,
        *,
        name: str,
        port: int = 0,
        host: str = HOST,
        error_renderer: ErrorRenderer = json_error_renderer,
        max_body_bytes: int,
        idle_timeout_s: int = HTTP_IDLE_TIMEOUT_S,
        threads: int = 8,
        connection_limit: int = 500,
        body_limit: BodyLimit | None = None,
    ) -> None:
        self.name = name
        adjustments = Adjustments(
            host=host,
            port=port,
            threads=threads,
            # NOTE: waitress checks inactivity every cleanup_interval seconds; checking as often as the timeout
            # itself keeps the effective limit within 2x of what is asked.
            channel_timeout=idle_timeout_s,
            cleanup_interval=max(1, min(idle_timeout_s, 30)),
            max_request_body_size=max_body_bytes,
            connection_limit=connection_limit,
            expose_tracebacks=False,
            ident="",
            url_scheme="http",
        )
        adjustments.body_limit = body_limit  # read by _StrictParser
        self._map: dict[int, Any] = {}
        self._server = _Server(app, map=self._map, adj=adjustments)
        self._server.error_renderer = error_renderer
        self._server.service_name = name
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.effective_port)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self._server.effective_host}:{self.port}"

    def start(self) -> HttpServer:
        """Serve in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._server.run, name=f"http-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and every connection, then stop the request threads."""
        # NOTE: waitress's run() loops until its socket map is empty; closing every dispatcher in the map (the
        # listener, the wake-up trigger, open channels) ends it, as webtest's StopableWSGIServer does.
        for _ in range(100):
            if not self._map:
                break
            for fileno, dispatcher in list(self._map.items()):
                try:
                    dispatcher.close()
                except OSError:  # a channel its peer already tore down
                    self._map.pop(fileno, None)
        self._server.task_dispatcher.shutdown(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HttpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
