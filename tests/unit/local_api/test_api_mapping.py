"""Event construction, response mapping, routing and throttling of the local API (no sockets)."""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local_runtime.api import (
    MAX_API_PAYLOAD_BYTES,
    ApiGateway,
    ApiSpec,
    ConcurrencyLimiter,
    FunctionSpec,
    GatewayResponse,
    HttpRequest,
    ProxyResponseError,
    Route,
    TokenBucket,
    api_spec_from_template,
    build_proxy_event,
    is_binary_media_type,
    map_proxy_response,
    normalize_media_type,
)

BINARY = ["image/jpeg", "image/png", "application/x-image"]
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01"


def _spec(reserved: int | None = 2, gateway_responses: dict[str, Any] | None = None) -> ApiSpec:
    return ApiSpec(
        function=FunctionSpec(
            logical_id="InferenceFunction",
            handler="app.lambda_handler",
            code_dir=Path("."),
            reserved_concurrency=reserved,
            timeout_s=30,
        ),
        routes=[Route("POST", "/predict"), Route("GET", "/health")],
        binary_media_types=BINARY,
        stage_name="dev",
        gateway_responses=gateway_responses or {},
    )


def test_binary_request_is_base64_encoded_with_flag() -> None:
    request = HttpRequest(
        "POST", "/predict?top_k=3&top_k=4&x=", [("Content-Type", "image/jpeg"), ("Host", "127.0.0.1:3000")], JPEG_BYTES
    )
    event = build_proxy_event(
        request,
        Route("POST", "/predict"),
        {},
        BINARY,
        stage="dev",
        port=3000,
        request_id="req-1",
        now=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == JPEG_BYTES
    assert event["httpMethod"] == "POST"
    assert event["resource"] == "/predict"
    assert event["path"] == "/predict"
    # last value wins in queryStringParameters, all values in the multi-value map, blanks kept
    assert event["queryStringParameters"] == {"top_k": "4", "x": ""}
    assert event["multiValueQueryStringParameters"] == {"top_k": ["3", "4"], "x": [""]}
    ctx = event["requestContext"]
    assert ctx["requestId"] == "req-1"
    assert ctx["stage"] == "dev"
    assert ctx["resourcePath"] == "/predict"
    assert ctx["path"] == "/dev/predict"
    assert ctx["accountId"] == "123456789012"
    assert ctx["requestTime"] == "02/Jan/2024:03:04:05 +0000"
    assert ctx["requestTimeEpoch"] == 1704164645000
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert event["headers"]["Content-Type"] == "image/jpeg"
    assert event["headers"]["X-Forwarded-Port"] == "3000"
    assert event["multiValueHeaders"]["Content-Type"] == ["image/jpeg"]
    json.dumps(event)  # the event must be pure JSON, like the one Lambda delivers


def test_text_request_stays_text_and_empty_fields_are_null() -> None:
    body = json.dumps({"image": "abc", "top_k": 2}).encode()
    request = HttpRequest("POST", "/predict", [("content-type", "application/json; charset=utf-8")], body)
    event = build_proxy_event(request, Route("POST", "/predict"), {}, BINARY)
    assert event["isBase64Encoded"] is False
    assert json.loads(event["body"]) == {"image": "abc", "top_k": 2}
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None
    assert event["headers"]["content-type"] == "application/json; charset=utf-8"  # client's header case is kept

    get = build_proxy_event(HttpRequest("GET", "/health", []), Route("GET", "/health"), {}, BINARY)
    assert get["body"] is None and get["isBase64Encoded"] is False


def test_repeated_headers_go_to_multi_value_headers() -> None:
    request = HttpRequest("GET", "/health", [("X-Trace", "a"), ("X-Trace", "b")])
    event = build_proxy_event(request, Route("GET", "/health"), {}, BINARY)
    assert event["headers"]["X-Trace"] == "b"
    assert event["multiValueHeaders"]["X-Trace"] == ["a", "b"]


@pytest.mark.parametrize(
    ("content_type", "types", "expected"),
    [
        ("image/jpeg", ["image/jpeg"], True),
        ("IMAGE/JPEG; q=1", ["image/jpeg"], True),
        ("image/webp", ["image/*"], True),
        ("application/json", ["*/*"], True),
        ("application/json", ["image/jpeg"], False),
        (None, ["image/jpeg"], False),
    ],
)
def test_binary_media_type_matching(content_type: str | None, types: list[str], expected: bool) -> None:
    assert is_binary_media_type(content_type, types) is expected


def test_template_media_type_escape() -> None:
    assert normalize_media_type("image~1jpeg") == "image/jpeg"


def test_route_matching_with_path_parameters() -> None:
    assert Route("POST", "/predict").match("POST", "/predict") == {}
    assert Route("POST", "/predict").match("GET", "/predict") is None
    assert Route("GET", "/models/{name}").match("GET", "/models/abc") == {"name": "abc"}
    assert Route("ANY", "/files/{proxy+}").match("DELETE", "/files/a/b") == {"proxy": "a/b"}
    assert Route("GET", "/models/{name}").match("GET", "/models/a/b") is None


def test_response_mapping_merges_headers_and_defaults_content_type() -> None:
    output = {
        "statusCode": 200,
        "headers": {"X-Model-Version": "v1", "X-Dup": "a"},
        "multiValueHeaders": {"X-Dup": ["a", "b"]},
        "body": '{"ok": true}',
        "isBase64Encoded": False,
    }
    response = map_proxy_response(output, BINARY)
    assert response.status == 200
    assert response.header("Content-Type") == "application/json"
    assert [v for k, v in response.headers if k == "X-Dup"] == ["a", "b"]
    assert response.json() == {"ok": True}


def test_response_base64_body_is_decoded_only_for_binary_types_the_client_accepts() -> None:
    png = b"\x89PNG\r\n\x1a\n"
    output = {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png"},
        "body": base64.b64encode(png).decode(),
        "isBase64Encoded": True,
    }
    assert map_proxy_response(output, BINARY, accept="image/png").body == png
    assert map_proxy_response(output, BINARY, accept=None).body == png
    # a client that does not accept the binary type gets the base64 text, as from a REST API
    assert map_proxy_response(output, BINARY, accept="application/json").body == base64.b64encode(png)
    assert map_proxy_response(output, [], accept="image/png").body == base64.b64encode(png)


@pytest.mark.parametrize(
    "output",
    [
        "not a dict",
        {"statusCode": 200, "unexpected": 1},
        {"statusCode": "abc"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "isBase64Encoded": "maybe"},
    ],
)
def test_malformed_proxy_responses_are_rejected(output: Any) -> None:
    with pytest.raises(ProxyResponseError):
        map_proxy_response(output, BINARY)


def _echo_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(
            {
                "isBase64Encoded": event["isBase64Encoded"],
                "request_id": context.aws_request_id,
                "remaining": context.get_remaining_time_in_millis() > 0,
            }
        ),
    }


def test_gateway_invokes_handler_and_maps_response() -> None:
    gateway = ApiGateway(_spec(), _echo_handler)
    response = gateway.handle(HttpRequest("POST", "/predict", [("Content-Type", "image/jpeg")], JPEG_BYTES))
    assert response.status == 200
    body = response.json()
    assert body["isBase64Encoded"] is True
    assert body["remaining"] is True
    assert response.header("x-amzn-RequestId") == body["request_id"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/nope"), ("GET", "/predict"), ("DELETE", "/health")])
def test_unknown_route_is_missing_authentication_token(method: str, path: str) -> None:
    response = ApiGateway(_spec(), _echo_handler).handle(HttpRequest(method, path, []))
    assert response.status == 403
    assert response.json() == {"message": "Missing Authentication Token"}


def test_handler_exception_is_502_internal_server_error() -> None:
    def boom(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("secret detail")

    response = ApiGateway(_spec(), boom).handle(HttpRequest("GET", "/health", []))
    assert response.status == 502
    assert response.json() == {"message": "Internal server error"}
    assert b"secret" not in response.body


def test_request_over_10mb_is_413() -> None:
    response = ApiGateway(_spec(), _echo_handler).handle(
        HttpRequest("POST", "/predict", [("Content-Type", "image/jpeg")], b"x" * (MAX_API_PAYLOAD_BYTES + 1))
    )
    assert response.status == 413


def test_event_over_lambda_payload_limit_is_rejected_by_lambda() -> None:
    # 5 MB of JPEG becomes ~6.7 MB of base64: Lambda's 6 MB invoke limit rejects it before the handler runs.
    calls: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(1)
        return {"statusCode": 200, "body": ""}

    response = ApiGateway(_spec(), handler).handle(
        HttpRequest("POST", "/predict", [("Content-Type", "image/jpeg")], b"x" * 5_000_000)
    )
    assert response.status == 500
    assert response.json() == {"message": "Internal server error"}
    assert calls == []


def test_limiter_never_exceeds_reserved_concurrency() -> None:
    limiter = ConcurrencyLimiter(2)
    results: list[bool] = []
    gate = threading.Event()
    entered = threading.Barrier(3)

    def worker() -> None:
        with limiter.slot() as ok:
            results.append(ok)
            entered.wait(timeout=5)
            gate.wait(timeout=5)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    entered.wait(timeout=5)  # both slots are held now
    with limiter.slot() as ok:
        assert ok is False
    gate.set()
    for t in threads:
        t.join()
    assert results == [True, True]
    assert limiter.peak == 2 and limiter.throttled == 1 and limiter.in_flight == 0
    with limiter.slot() as ok:  # slots are released
        assert ok is True


def test_throttled_invocation_gets_api_gateway_500_and_never_reaches_handler() -> None:
    release = threading.Event()
    started = threading.Event()
    calls: list[str] = []

    def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event["path"])
        started.set()
        release.wait(timeout=5)
        return {"statusCode": 200, "body": "{}"}

    gateway = ApiGateway(_spec(reserved=1), slow)
    first: list[Any] = []
    t = threading.Thread(target=lambda: first.append(gateway.handle(HttpRequest("GET", "/health", []))))
    t.start()
    assert started.wait(timeout=5)
    throttled = gateway.handle(HttpRequest("GET", "/health", []))
    release.set()
    t.join()
    assert throttled.status == 500
    assert throttled.json() == {"message": "Internal server error"}
    assert first[0].status == 200
    assert calls == ["/health"]


def test_template_gateway_response_override_maps_throttling_to_429() -> None:
    override = GatewayResponse(429, '{"message": "Too Many Requests"}', (("Retry-After", "1"),))
    spec = _spec(reserved=0, gateway_responses={"INTEGRATION_FAILURE": override})
    response = ApiGateway(spec, _echo_handler).handle(HttpRequest("GET", "/health", []))
    assert response.status == 429
    assert response.json() == {"message": "Too Many Requests"}
    assert ("Retry-After", "1") in response.headers


def test_template_declares_throttling_as_429_with_retry_after(repo_root: Path) -> None:
    spec = api_spec_from_template(repo_root / "template.yaml")
    for kind in ("INTEGRATION_FAILURE", "THROTTLED"):
        assert spec.gateway_responses[kind].status == 429
        assert ("Retry-After", "1") in spec.gateway_responses[kind].headers


def test_token_bucket_allows_burst_then_refills_at_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5  # one token back at 2/s
    assert [bucket.take() for _ in range(2)] == [True, False]
    assert TokenBucket(None, None).take() is True


def test_stage_throttle_answers_429_too_many_requests() -> None:
    spec = _spec()
    spec.throttle_rate, spec.throttle_burst = 0.001, 1
    gateway = ApiGateway(spec, _echo_handler)
    assert gateway.handle(HttpRequest("GET", "/health", [])).status == 200
    response = gateway.handle(HttpRequest("GET", "/health", []))
    assert response.status == 429
    assert response.json() == {"message": "Too Many Requests"}


def test_event_has_the_same_shape_as_the_recorded_api_gateway_fixture(event_loader: Any) -> None:
    recorded = event_loader("apigw_predict_jpeg")
    request = HttpRequest("POST", "/predict?top_k=3", [("Content-Type", "image/jpeg")], JPEG_BYTES)
    event = build_proxy_event(request, Route("POST", "/predict"), {}, BINARY)
    assert set(event) == set(recorded)
    assert set(event["requestContext"]) == set(recorded["requestContext"])
    # the fixture keeps only the identity fields the handler reads; API Gateway sends more
    assert set(recorded["requestContext"]["identity"]) <= set(event["requestContext"]["identity"])
    assert event["queryStringParameters"] == recorded["queryStringParameters"]
    assert event["isBase64Encoded"] == recorded["isBase64Encoded"]
