"""The local REST API over real HTTP: the template's routes and auth → the real Lambda handler → InvokeEndpoint on
the local SageMaker → a real model server. Requests are SigV4-signed for ``execute-api`` as the IAM auth mode
requires (the same signing the deployed API needs).
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local_aws.apigateway.gateway import ApiGateway, api_error_renderer
from local_aws.apigateway.spec import api_spec_from_template
from local_aws.auth.credentials import StaticCredentialStore
from local_aws.constants import API_GATEWAY_MAX_BYTES, REGION
from local_aws.http.server import HttpServer
from local_aws.lambda_runtime.runtime import LocalFunction
from tests.integration.local_aws_fixtures import UNTRAINED_CLASSES, Aws, serving_endpoint
from tools import dataset


@pytest.fixture(scope="module")
def endpoint(local_aws: Aws) -> Iterator[str]:
    """The stack's endpoint (the one the function calls), serving a real model."""
    name = local_aws.output("EndpointName")
    with serving_endpoint(local_aws, name, "api-over-http"):
        yield name


@pytest.fixture(scope="module")
def credentials(local_aws: Aws) -> Credentials:
    issued = local_aws.runtime.credentials
    assert issued is not None
    return Credentials(issued.access_key_id, issued.secret_access_key)


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return dataset.sample_photo(tmp_path_factory.mktemp("photo") / "china.jpg").read_bytes()


def call(
    url: str,
    method: str,
    path: str,
    creds: Credentials | None,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One request; signed for execute-api when ``creds`` is given."""
    request = AWSRequest(method=method, url=f"{url}{path}", data=body, headers=dict(headers or {}))
    if creds is not None:
        SigV4Auth(creds, "execute-api", REGION).add_auth(request)
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    try:
        conn.request(method, path, body=body or None, headers=dict(request.headers.items()))
        response = conn.getresponse()
        raw = response.read()
        doc = json.loads(raw) if raw else None
        return response.status, {k.lower(): v for k, v in response.getheaders()}, doc
    finally:
        conn.close()


def test_a_signed_photo_gets_real_predictions(
    local_aws: Aws, endpoint: str, credentials: Credentials, photo: bytes
) -> None:
    status, headers, doc = call(
        local_aws.api_url, "POST", "/predict?top_k=3", credentials, photo, {"Content-Type": "image/jpeg"}
    )
    assert status == 200, doc
    assert [p["label"] for p in doc["predictions"]] and {p["label"] for p in doc["predictions"]} <= set(
        UNTRAINED_CLASSES
    )
    assert len(doc["predictions"]) == 3
    assert abs(sum(p["probability"] for p in doc["predictions"]) - 1.0) < 1e-3  # 3 of 3 classes
    assert headers.get("x-amzn-requestid")


def test_json_base64_body_gives_the_same_answer(
    local_aws: Aws, endpoint: str, credentials: Credentials, photo: bytes
) -> None:
    raw = call(local_aws.api_url, "POST", "/predict", credentials, photo, {"Content-Type": "image/jpeg"})
    body = json.dumps({"image": base64.b64encode(photo).decode()}).encode()
    encoded = call(local_aws.api_url, "POST", "/predict", credentials, body, {"Content-Type": "application/json"})
    assert raw[0] == encoded[0] == 200
    assert raw[2]["predictions"] == encoded[2]["predictions"]


def test_unsigned_and_foreign_signed_requests_are_refused_as_api_gateway_does(local_aws: Aws, photo: bytes) -> None:
    status, headers, doc = call(local_aws.api_url, "POST", "/predict", None, photo, {"Content-Type": "image/jpeg"})
    assert (status, doc) == (403, {"message": "Missing Authentication Token"})
    assert headers.get("x-amzn-errortype")
    foreign = Credentials("AKIAFOREIGNKEY000000", "x" * 40)
    status, _, doc = call(local_aws.api_url, "GET", "/health", foreign)
    assert status == 403 and "security token" in doc["message"]


def test_health(local_aws: Aws, endpoint: str, credentials: Credentials) -> None:
    status, _, body = call(local_aws.api_url, "GET", "/health", credentials)
    assert status == 200 and body["status"] == "ok"


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif", 415),
        (b"{not json", "application/json", 400),
        (b"\xff\xd8\xff\xe0 truncated", "image/jpeg", 400),
        (b"", "image/jpeg", 400),
    ],
)
def test_bad_input_gets_a_4xx_from_the_real_handler(
    local_aws: Aws, endpoint: str, credentials: Credentials, body: bytes, content_type: str, expected: int
) -> None:
    status, _, doc = call(local_aws.api_url, "POST", "/predict", credentials, body, {"Content-Type": content_type})
    assert status == expected, doc
    assert isinstance(doc.get("message"), str) and "Traceback" not in doc["message"]


def test_bad_top_k_is_400(local_aws: Aws, endpoint: str, credentials: Credentials, photo: bytes) -> None:
    status, _, doc = call(
        local_aws.api_url, "POST", "/predict?top_k=99", credentials, photo, {"Content-Type": "image/jpeg"}
    )
    assert status == 400 and "top_k" in doc["message"]


def _jpeg_of_size(photo: bytes, size: int) -> bytes:
    """A real JPEG's header followed by padding: the handler sniffs it as a JPEG of ``size`` bytes."""
    return photo[:2048] + b"\0" * (size - 2048)


def test_an_image_too_large_for_the_lambda_event_is_413_naming_the_limit(
    local_aws: Aws, credentials: Credentials, photo: bytes
) -> None:
    """4.8 MB of JPEG: under API Gateway's 10 MB, but its base64 event is over Lambda's 6,291,456 B. API Gateway
    answers REQUEST_TOO_LARGE, which the template words with the real limit; never the throttle's 429."""
    image = _jpeg_of_size(photo, 4_800_000)
    status, headers, doc = call(
        local_aws.api_url, "POST", "/predict", credentials, image, {"Content-Type": "image/jpeg"}
    )
    assert status == 413, doc
    assert "4700160 bytes" in doc["message"]
    assert "retry-after" not in headers


def test_an_image_just_over_the_limit_is_refused_by_the_handler_with_413(
    local_aws: Aws, credentials: Credentials, photo: bytes
) -> None:
    """Over the 4,700,160 B image limit, but its event still fits Lambda: the function's own 413 names the limit."""
    image = _jpeg_of_size(photo, 4_700_160 + 3)
    status, headers, doc = call(
        local_aws.api_url, "POST", "/predict", credentials, image, {"Content-Type": "image/jpeg"}
    )
    assert status == 413, doc
    assert "the limit is 4700160 bytes" in doc["message"] and doc["request_id"]
    assert "retry-after" not in headers


def test_a_100000_deep_json_array_is_400_not_502(local_aws: Aws, credentials: Credentials) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    status, headers, doc = call(
        local_aws.api_url, "POST", "/predict", credentials, body, {"Content-Type": "application/json"}
    )
    assert status == 400, doc
    assert "nested too deeply" in doc["message"]
    assert "retry-after" not in headers


def test_the_functions_metric_lines_go_to_its_log_group_not_the_terminal(
    local_aws: Aws, credentials: Credentials, capfd: pytest.CaptureFixture[str]
) -> None:
    """Lambda sends what the function prints (Powertools' EMF metric JSON, its structured logs) to its log group;
    the runtime's terminal stays quiet. Read back through the Logs API, as ``aws logs`` would."""
    capfd.readouterr()
    marker = f"[{uuid.uuid4().hex}]"
    status, _, doc = call(
        local_aws.api_url, "POST", "/predict", credentials, marker.encode(), {"Content-Type": "application/json"}
    )
    assert status == 400, doc
    out, _ = capfd.readouterr()
    assert '"_aws"' not in out and "JSON body must be an object" not in out
    logs = local_aws.client("logs")
    group = local_aws.runtime.api_spec.function.log_group
    messages = [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]
    assert any(doc["request_id"] in m and '"level":"WARNING"' in m for m in messages), messages[-6:]
    emf = [json.loads(m) for m in messages if m.startswith('{"_aws"')]
    assert any("ClientError" in m for m in emf)


def test_unknown_route_is_403_missing_authentication_token(local_aws: Aws, credentials: Credentials) -> None:
    status, _, doc = call(local_aws.api_url, "GET", "/nope", credentials)
    assert (status, doc) == (403, {"message": "Missing Authentication Token"})


def test_concurrency_above_reserved_is_throttled_with_the_templates_429(
    local_aws: Aws, endpoint: str, credentials: Credentials, photo: bytes
) -> None:
    """ReservedConcurrentExecutions=1: concurrent callers beyond one get the template's INTEGRATION_FAILURE 429."""
    spec = api_spec_from_template(overrides={"LambdaReservedConcurrency": "1"})
    assert spec.function.reserved_concurrency == 1
    issued = local_aws.runtime.credentials
    assert issued is not None
    env = {
        "AWS_ENDPOINT_URL": local_aws.url,
        "AWS_ACCESS_KEY_ID": issued.access_key_id,
        "AWS_SECRET_ACCESS_KEY": issued.secret_access_key,
        "AWS_SESSION_TOKEN": "",
    }
    function = LocalFunction(spec.function, env, lambda _: None)
    gateway = ApiGateway(spec, function, StaticCredentialStore(issued))
    server = HttpServer(
        gateway, name="api-throttle", error_renderer=api_error_renderer(spec), max_body_bytes=API_GATEWAY_MAX_BYTES + 1
    ).start()
    gateway.port = server.port
    try:
        start = threading.Barrier(12)
        results: list[tuple[int, Any, str | None]] = []
        lock = threading.Lock()

        def client() -> None:
            start.wait(timeout=30)
            status, headers, doc = call(
                server.url, "POST", "/predict", credentials, photo, {"Content-Type": "image/jpeg"}
            )
            with lock:
                results.append((status, doc, headers.get("retry-after")))

        threads = [threading.Thread(target=client) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.stop()
        function.close()
    statuses = sorted(s for s, _, _ in results)
    # template.yaml maps INTEGRATION_FAILURE (a throttled Lambda; a bare 500 by default) to 429 + Retry-After.
    assert set(statuses) <= {200, 429}, statuses
    assert 200 in statuses and 429 in statuses, statuses
    assert all(doc == {"message": "Too many requests, retry later"} for s, doc, _ in results if s == 429)
    assert {retry for s, _, retry in results if s == 429} == {"1"}
    assert function.throttled == statuses.count(429)
