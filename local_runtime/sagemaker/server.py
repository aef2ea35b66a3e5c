"""``SageMakerServer``: one HTTP server for the SageMaker control plane (JSON 1.1) and runtime (rest-json).

Point ``AWS_ENDPOINT_URL_SAGEMAKER`` and ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` at ``server.url`` and unmodified
boto3 (waiters included), awscli and the SageMaker SDK talk to it.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from local_runtime.sagemaker.control import ControlPlane
from local_runtime.sagemaker.errors import RuntimeApiError, SageMakerError

LOGGER = logging.getLogger("local_runtime.sagemaker")
TARGET_PREFIX = "SageMaker."
JSON_11 = "application/x-amz-json-1.1"


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    control: ControlPlane


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # NOTE: http.server writes the headers and the body in separate send() calls; with Nagle on, a keep-alive
    # client's delayed ACK then stalls every response by ~40 ms on Linux. TCP_NODELAY removes the stall.
    disable_nagle_algorithm = True
    server: _HttpServer

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        headers = {"x-amzn-RequestId": str(uuid.uuid4()), **headers}
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        body = json.dumps(doc, default=str).encode("utf-8")
        self._reply(status, body, {"Content-Type": JSON_11, **(headers or {})})

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        if urlsplit(self.path).path in ("/", "/ping", "/health"):
            self._json(200, {"status": "ok"})
        else:
            self._json(404, {"__type": "UnknownOperationException", "message": f"No route for GET {self.path}"})

    def do_POST(self) -> None:
        body = self._read_body()
        path = urlsplit(self.path).path
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "endpoints" and parts[2] == "invocations":
            self._invoke(unquote(parts[1]), body)
            return
        target = self.headers.get("X-Amz-Target", "")
        if not target.startswith(TARGET_PREFIX):
            self._json(
                400, {"__type": "UnknownOperationException", "message": f"Missing or unknown X-Amz-Target {target!r}"}
            )
            return
        self._control(target[len(TARGET_PREFIX) :], body)

    def _control(self, op_name: str, body: bytes) -> None:
        try:
            params = json.loads(body or b"{}")
        except json.JSONDecodeError:
            self._json(400, {"__type": "SerializationException", "message": "Request body is not valid JSON"})
            return
        try:
            result = self.server.control.call(op_name, params)
        except SageMakerError as exc:
            self._json(exc.status, {"__type": exc.code, "message": exc.message})
            return
        except Exception:  # the service boundary: never a traceback to the client
            LOGGER.exception("SageMaker.%s failed", op_name)
            self._json(
                500,
                {
                    "__type": "InternalFailure",
                    "message": "The request processing has failed because of an internal error.",
                },
            )
            return
        self._json(200, {k: v for k, v in result.items() if not k.startswith("_")})

    def _invoke(self, endpoint: str, body: bytes) -> None:
        headers = dict(self.headers.items())
        # http.server keeps original case; look up the SageMaker headers case-insensitively.
        normalized = {k.lower(): v for k, v in headers.items()}
        canonical = {}
        for name in ("Content-Type", "Accept", "X-Amzn-SageMaker-Custom-Attributes", "X-Amzn-SageMaker-Target-Variant",
                     "X-Amzn-SageMaker-Inference-Id"):  # fmt: skip
            if name.lower() in normalized:
                canonical[name] = normalized[name.lower()]
        try:
            payload, out_headers = self.server.control.endpoints.invoke(endpoint, body, canonical)
        except RuntimeApiError as exc:
            doc = {"Message": exc.message, "message": exc.message, **exc.members}
            self._reply(
                exc.status,
                json.dumps(doc).encode("utf-8"),
                {"Content-Type": "application/json", "x-amzn-ErrorType": exc.code},
            )
            return
        except Exception:  # the service boundary
            LOGGER.exception("InvokeEndpoint %s failed", endpoint)
            self._reply(
                500,
                b'{"message": "An internal error occurred."}',
                {"Content-Type": "application/json", "x-amzn-ErrorType": "InternalFailure"},
            )
            return
        self._reply(200, payload, out_headers)

    def log_message(self, format: str, *args: Any) -> None:
        LOGGER.debug("%s " + format, self.address_string(), *args)


class SageMakerServer:
    """The local SageMaker service.

    Args:
        home: runtime home (state, local S3, jobs, logs).
        host: bind address.
        port: bind port (0 picks a free one).
        log_to_console: echo training host logs to stdout.
    """

    def __init__(self, home: Path, host: str = "127.0.0.1", port: int = 0, log_to_console: bool = False) -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.control = ControlPlane(self.home, log_to_console=log_to_console)
        self._httpd = _HttpServer((host, port), _Handler)
        self._httpd.control = self.control
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def start(self) -> SageMakerServer:
        """Serve in a background thread and restore persisted endpoints; returns self."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
                                        name="sagemaker-server")  # fmt: skip
        self._thread.start()
        self.control.start()
        return self

    def stop(self) -> None:
        """Stop training jobs and endpoint workers, then the HTTP server."""
        self.control.shutdown()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SageMakerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
