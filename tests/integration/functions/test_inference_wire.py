"""The inference function over real HTTP: botocore's own wire parsing, socket timeouts and retries.

A small HTTP server on 127.0.0.1 answers ``POST /endpoints/<name>/invocations`` the way the SageMaker runtime does
(rest-json errors with ``x-amzn-ErrorType``), and ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` points the function at it,
the same switch the local runtime uses. Stubber tests cannot see this layer: Stubber skips parsing and retries.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from moto import mock_aws
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

import app
from tests.conftest import load_event


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    error_type: str | None = None
    delay_s: float = 0.0


@dataclass
class FakeRuntime:
    replies: list[Reply] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    peers: list[tuple[str, int]] = field(default_factory=list)  # the client address of each request


def _handler(state: FakeRuntime) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1 keeps the connection open between requests, as the SageMaker runtime's front end does.
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append((self.path, dict(self.headers.items()), body))
            state.peers.append(self.client_address)
            reply = state.replies.pop(0) if len(state.replies) > 1 else state.replies[0]
            time.sleep(reply.delay_s)
            payload = json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                if reply.error_type:
                    self.send_header("x-amzn-ErrorType", f"{reply.error_type}:http://internal.amazon.com/coral/")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out first, as intended

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRuntime]:
    state = FakeRuntime()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("ENDPOINT_NAME", "dogbreed-dev")
    monkeypatch.setenv("SAGEMAKER_READ_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setattr(app, "_dependencies", None)  # built from the environment, as on a cold start
    yield state
    monkeypatch.setattr(app, "_dependencies", None)
    server.shutdown()
    server.server_close()


def handle(event_name: str, context: Any) -> tuple[int, dict[str, Any], dict[str, list[str]]]:
    response = app.lambda_handler(load_event(event_name), context)
    return response["statusCode"], json.loads(response["body"]), dict(response["multiValueHeaders"])


PREDICTIONS = {
    "model_version": "dogbreed-dev-0123456789abcdef",
    "predictions": [
        [{"label": "042.Border_collie", "probability": 0.81}, {"label": "001.Affenpinscher", "probability": 0.1}]
    ],
}


def test_success_over_http(fake_runtime: FakeRuntime, lambda_context: Any) -> None:
    fake_runtime.replies = [Reply(200, PREDICTIONS)]
    status, body, _ = handle("apigw_predict_json_base64", lambda_context)
    assert status == 200
    assert body["predictions"][0] == {"label": "042.Border_collie", "probability": 0.81}
    path, headers, sent = fake_runtime.requests[0]
    assert path == "/endpoints/dogbreed-dev/invocations"
    # The client's JSON {"image": b64, "top_k": 3} reaches the endpoint as the decoded JPEG bytes, not base64 again.
    image = base64.b64decode(json.loads(load_event("apigw_predict_json_base64")["body"])["image"])
    assert headers["Content-Type"] == "image/jpeg; top_k=3" and headers["Accept"] == "application/json"
    assert sent == image
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256")  # the runtime call itself is SigV4-signed


def test_warm_invocations_reuse_one_connection(fake_runtime: FakeRuntime, lambda_context: Any) -> None:
    """One client per sandbox, kept alive: three predictions arrive over a single TCP connection."""
    fake_runtime.replies = [Reply(200, PREDICTIONS)]
    for _ in range(3):
        assert handle("apigw_predict_png", lambda_context)[0] == 200
    assert len(fake_runtime.peers) == 3
    assert len(set(fake_runtime.peers)) == 1, fake_runtime.peers


MODEL_ERROR = {
    "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
    "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/dogbreed-dev",
    "Message": 'Received client error (400) from primary with message "cannot identify image file".',
    "OriginalMessage": "Traceback (most recent call last): PIL.UnidentifiedImageError",
}


@pytest.mark.parametrize(("original", "expected"), [(400, 422), (413, 422), (500, 502)])
def test_model_error_original_status_is_parsed_from_the_wire(
    original: int, expected: int, fake_runtime: FakeRuntime, lambda_context: Any
) -> None:
    fake_runtime.replies = [Reply(424, MODEL_ERROR | {"OriginalStatusCode": original}, error_type="ModelError")]
    status, body, _ = handle("apigw_predict_jpeg", lambda_context)
    assert status == expected
    assert "arn:" not in json.dumps(body) and "Traceback" not in json.dumps(body)
    assert len(fake_runtime.requests) == 1  # a model error is not retried


@pytest.mark.parametrize(
    ("http_status", "error_type", "expected"),
    [(503, "ServiceUnavailable", 503), (400, "ThrottlingException", 429)],
)
def test_transient_errors_are_retried_once_then_mapped(
    http_status: int, error_type: str, expected: int, fake_runtime: FakeRuntime, lambda_context: Any
) -> None:
    fake_runtime.replies = [Reply(http_status, {"message": "slow down arn:aws:x"}, error_type=error_type)]
    status, _, headers = handle("apigw_predict_jpeg", lambda_context)
    assert status == expected
    assert headers["Retry-After"] == ["5"]
    assert len(fake_runtime.requests) == 2  # standard mode, total_max_attempts=2


def test_slow_model_times_out_as_504_within_the_budget(fake_runtime: FakeRuntime, lambda_context: Any) -> None:
    fake_runtime.replies = [Reply(200, PREDICTIONS, delay_s=1.5)]
    started = time.monotonic()
    status, body, _ = handle("apigw_predict_jpeg", lambda_context)
    elapsed = time.monotonic() - started
    assert status == 504 and body["message"] == "The model endpoint timed out"
    assert len(fake_runtime.requests) == 2
    assert elapsed < 2 * 0.5 + 1.0 + 0.5  # attempts × read timeout + max backoff + slack


def test_connection_refused_is_503(monkeypatch: pytest.MonkeyPatch, lambda_context: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("ENDPOINT_NAME", "dogbreed-dev")
    monkeypatch.setattr(app, "_dependencies", None)
    status, body, headers = handle("apigw_predict_jpeg", lambda_context)
    monkeypatch.setattr(app, "_dependencies", None)
    assert status == 503 and "Retry-After" in headers
    assert str(port) not in json.dumps(body)


def _moto_takes_binary_bodies(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's sagemaker-runtime decodes the request body as UTF-8 and JSON-encodes it to match queued results, so a
    binary Body (a blob in botocore's model; what the function sends) fails inside moto. Hand it the bytes as
    latin-1 text: a lossless byte-to-character mapping, so the queued-results flow stays moto's own."""
    original = SageMakerRuntimeResponse.setup_class

    def setup_class(self: Any, request: Any, full_url: str | None = None, headers: Any = None, **_: Any) -> None:
        original(self, request, full_url, headers, use_raw_body=True)
        if isinstance(self.body, bytes):
            self.body = self.body.decode("latin-1")

    monkeypatch.setattr(SageMakerRuntimeResponse, "setup_class", setup_class)


def test_moto_sagemaker_runtime_end_to_end(monkeypatch: pytest.MonkeyPatch, lambda_context: Any) -> None:
    """Checklist item 41: the handler against moto's sagemaker-runtime with a queued, contract-shaped result."""
    monkeypatch.setenv("ENDPOINT_NAME", "dogbreed-dev")
    _moto_takes_binary_bodies(monkeypatch)
    with mock_aws():
        monkeypatch.setattr(app, "_dependencies", None)
        requests.post(
            "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
            json={"results": [{"Body": json.dumps(PREDICTIONS), "ContentType": "application/json"}]},
            timeout=5,
        )
        status, body, _ = handle("apigw_predict_png", lambda_context)
    monkeypatch.setattr(app, "_dependencies", None)
    assert status == 200
    assert set(body) == {"predictions", "model_version", "request_id"}
    assert body["model_version"] == PREDICTIONS["model_version"]
