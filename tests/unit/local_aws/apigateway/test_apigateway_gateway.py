"""local_aws.apigateway.gateway: routing, limits, stage throttle, SigV4/API-key auth, the Lambda call, gateway
responses.

Most tests put a fake function (the two members ApiGateway uses: ``spec`` and ``invoke``) behind the gateway; the
concurrency and payload-limit tests use a real ``LocalFunction`` over a tiny handler module in ``tmp_path``.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.test import Client

from local_aws.apigateway.gateway import (
    API_KEY_FORBIDDEN,
    LAMBDA_REJECTED,
    MISSING_AUTH_TOKEN,
    ApiGateway,
    TokenBucket,
    gateway_response,
)
from local_aws.apigateway.proxy import HttpRequest
from local_aws.apigateway.spec import ApiSpec, GatewayResponse, Route, api_spec_from_template
from local_aws.auth.credentials import StaticCredentialStore, new_credentials
from local_aws.constants import API_GATEWAY_MAX_BYTES
from local_aws.lambda_runtime.function import FunctionSpec
from local_aws.lambda_runtime.runtime import FunctionError, LocalFunction, PayloadTooLarge, Throttled, _RoutedStdout

BINARY = ["image/jpeg", "image/png", "application/x-image"]
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01"
BASE_URL = "http://127.0.0.1:3000"
CREDS = new_credentials()
STORE = StaticCredentialStore(CREDS)
Handler = Callable[[dict[str, Any], str], Any]


class FakeFunction:
    """What ApiGateway needs of a LocalFunction: its spec and ``invoke(event, request_id)``."""

    def __init__(self, behaviour: Handler, timeout_s: float = 30.0) -> None:
        self.spec = FunctionSpec(logical_id="Fn", handler="app.handler", code_dir=Path("."), timeout_s=timeout_s)
        self.behaviour = behaviour
        self.events: list[dict[str, Any]] = []
        self.request_ids: list[str] = []

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> Any:
        self.events.append(event)
        self.request_ids.append(str(request_id))
        return self.behaviour(event, str(request_id))


def _echo(event: dict[str, Any], request_id: str) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"isBase64Encoded": event["isBase64Encoded"], "request_id": request_id}),
    }


def _spec(auth: str = "NONE", gateway_responses: dict[str, GatewayResponse] | None = None) -> ApiSpec:
    return ApiSpec(
        function=FunctionSpec(logical_id="Fn", handler="app.handler", code_dir=Path(".")),
        routes=[Route("POST", "/predict", auth), Route("GET", "/health", auth)],
        binary_media_types=BINARY,
        stage_name="dev",
        gateway_responses=gateway_responses or {},
    )


def _gateway(function: Any, spec: ApiSpec | None = None, api_key: str | None = None) -> ApiGateway:
    return ApiGateway(spec or _spec(), cast(LocalFunction, function), STORE, api_key=api_key)


def test_gateway_invokes_the_function_and_maps_its_response() -> None:
    """The event reaches the function (binary body flagged) and the response carries the same request id."""
    function = FakeFunction(_echo)
    response = _gateway(function).handle(HttpRequest("POST", "/predict", [("Content-Type", "image/jpeg")], JPEG_BYTES))
    assert response.status == 200
    body = response.json()
    assert body["isBase64Encoded"] is True
    assert response.header("x-amzn-RequestId") == body["request_id"] == function.request_ids[0]
    assert function.events[0]["requestContext"]["requestId"] == body["request_id"]
    assert function.events[0]["requestContext"]["stage"] == "dev"


@pytest.mark.parametrize(("method", "path"), [("GET", "/nope"), ("GET", "/predict"), ("DELETE", "/health")])
def test_unknown_route_is_missing_authentication_token(method: str, path: str) -> None:
    """An unknown resource or method is API Gateway's 403 Missing Authentication Token; the function is not called."""
    function = FakeFunction(_echo)
    response = _gateway(function).handle(HttpRequest(method, path, []))
    assert response.status == 403
    assert response.json() == {"message": "Missing Authentication Token"}
    assert response.header("x-amzn-ErrorType") == "IncompleteSignatureException"
    assert function.events == []


def test_function_error_is_502_internal_server_error_without_detail() -> None:
    """A function error is 502 {"message": "Internal server error"}; its message never reaches the client."""

    def boom(event: dict[str, Any], request_id: str) -> Any:
        raise FunctionError("RuntimeError", "secret detail at /var/task/app.py")

    response = _gateway(FakeFunction(boom)).handle(HttpRequest("GET", "/health", []))
    assert response.status == 502
    assert response.json() == {"message": "Internal server error"}
    assert b"secret" not in response.body and b"/var/task" not in response.body


def test_malformed_proxy_response_is_502() -> None:
    """A function answer API Gateway cannot map is a 502, not a crash."""
    response = _gateway(FakeFunction(lambda e, r: {"statusCode": 200, "bogus": 1})).handle(
        HttpRequest("GET", "/health", [])
    )
    assert response.status == 502
    assert response.json() == {"message": "Internal server error"}


def test_request_over_10mb_is_413_and_never_invokes() -> None:
    """A body over API Gateway's 10 MB is REQUEST_TOO_LARGE before the function is called."""
    function = FakeFunction(_echo)
    response = _gateway(function).handle(
        HttpRequest("POST", "/predict", [("Content-Type", "image/jpeg")], b"x" * (API_GATEWAY_MAX_BYTES + 1))
    )
    assert response.status == 413
    assert response.json() == {"message": "Request Too Long"}
    assert function.events == []


def test_a_throttled_lambda_is_500_integration_failure() -> None:
    """Throttled: the Lambda API rejected the call, so API Gateway answers 500 Internal server error."""

    def reject(event: dict[str, Any], request_id: str) -> Any:
        raise Throttled("Rate Exceeded.")

    response = _gateway(FakeFunction(reject)).handle(HttpRequest("GET", "/health", []))
    assert response.status == 500
    assert response.json() == {"message": "Internal server error"}


def test_an_event_too_large_for_lambda_is_413_request_too_long_not_integration_failure() -> None:
    """API Gateway refuses an event over Lambda's payload limit as REQUEST_TOO_LARGE (413), not as a 500."""

    def reject(event: dict[str, Any], request_id: str) -> Any:
        raise PayloadTooLarge("6500000 byte payload is too large for the RequestResponse invocation type")

    response = _gateway(FakeFunction(reject)).handle(HttpRequest("POST", "/predict", [], b"x"))
    assert response.status == 413
    assert response.json() == {"message": "Request Too Long"}
    assert response.header("x-amzn-ErrorType") == "BadRequestException"


def test_template_maps_an_event_too_large_to_413_naming_the_image_limit(repo_root: Path) -> None:
    """With the repository template, the oversize 413 names the real image limit and never invites a retry."""
    spec = api_spec_from_template(repo_root / "template.yaml")
    spec.routes = [Route(r.method, r.path, "NONE") for r in spec.routes]

    def reject(event: dict[str, Any], request_id: str) -> Any:
        raise PayloadTooLarge("too large")

    response = _gateway(FakeFunction(reject), spec).handle(HttpRequest("POST", "/predict", [], b"x"))
    assert response.status == 413
    assert response.header("Retry-After") is None
    assert "4700160 bytes" in response.json()["message"]


def test_template_gateway_responses_map_integration_failure_to_429(repo_root: Path) -> None:
    """With the repository template's GatewayResponses, a throttled function is 429 + Retry-After: 1."""
    spec = api_spec_from_template(repo_root / "template.yaml")
    spec.routes = [Route(r.method, r.path, "NONE") for r in spec.routes]  # auth is tested on its own below

    def reject(event: dict[str, Any], request_id: str) -> Any:
        raise Throttled("Rate Exceeded.")

    response = _gateway(FakeFunction(reject), spec).handle(HttpRequest("GET", "/health", []))
    assert response.status == 429
    assert ("Retry-After", "1") in response.headers
    assert response.json() == json.loads(spec.gateway_responses["INTEGRATION_FAILURE"].body or "")


@pytest.mark.parametrize(
    ("timeout_s", "status", "message"), [(30.0, 504, "Endpoint request timed out"), (3.0, 502, "Internal server error")]
)
def test_function_timeout_maps_to_504_only_when_it_outlives_the_integration(
    timeout_s: float, status: int, message: str
) -> None:
    """Sandbox.Timedout is the integration timeout (504) only when the function may run past API Gateway's 29 s."""

    def timed_out(event: dict[str, Any], request_id: str) -> Any:
        raise FunctionError("Sandbox.Timedout", f"Task timed out after {timeout_s:.2f} seconds")

    response = _gateway(FakeFunction(timed_out, timeout_s=timeout_s)).handle(HttpRequest("GET", "/health", []))
    assert (response.status, response.json()) == (status, {"message": message})


def test_token_bucket_allows_burst_then_refills_at_rate() -> None:
    """``burst`` requests at once, then one per 1/rate seconds; no rate means no throttle."""
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5  # one token back at 2/s
    assert [bucket.take() for _ in range(2)] == [True, False]
    now[0] = 100.0  # refills never exceed the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert all(TokenBucket(None, None).take() for _ in range(100))


def test_stage_throttle_answers_429_too_many_requests_before_invoking() -> None:
    """Over the stage's MethodSettings throttle: 429 Too Many Requests, and the function is not called."""
    spec = _spec()
    spec.throttle_rate, spec.throttle_burst = 0.001, 1
    function = FakeFunction(_echo)
    gateway = _gateway(function, spec)
    assert gateway.handle(HttpRequest("GET", "/health", [])).status == 200
    response = gateway.handle(HttpRequest("GET", "/health", []))
    assert response.status == 429
    assert response.json() == {"message": "Too Many Requests"}
    assert response.header("x-amzn-ErrorType") == "TooManyRequestsException"
    assert len(function.events) == 1


def test_a_method_with_its_own_throttle_uses_its_own_bucket_not_the_stages() -> None:
    """MethodSettings for one method (template.yaml's GET /demo) override the stage's for that method only."""
    spec = _spec()
    spec.throttle_rate, spec.throttle_burst = 0.001, 2
    spec.method_throttles = {("GET", "/health"): (0.001, 1)}
    function = FakeFunction(_echo)
    gateway = _gateway(function, spec)
    statuses = [gateway.handle(HttpRequest("GET", "/health", [])).status for _ in range(2)]
    assert statuses == [200, 429]  # the method's burst of 1, not the stage's 2
    # The stage's bucket was not used by those: POST /predict still has its burst of 2.
    statuses = [gateway.handle(HttpRequest("POST", "/predict", [], b"{}")).status for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_gateway_response_overrides_by_type_then_family() -> None:
    """An override of the exact type wins; else DEFAULT_4XX/5XX; ``$context.error.message*`` is filled in."""
    overrides = {
        "DEFAULT_4XX": GatewayResponse(None, '{"error": $context.error.messageString}', (("X-Family", "4xx"),)),
        "INTEGRATION_FAILURE": GatewayResponse(503, None, ()),
    }
    spec = _spec(gateway_responses=overrides)
    forbidden = gateway_response(API_KEY_FORBIDDEN, spec, "rid")
    assert forbidden.status == 403  # no StatusCode in the override: the type's own
    assert forbidden.json() == {"error": "Forbidden"}
    assert ("X-Family", "4xx") in forbidden.headers
    assert gateway_response(MISSING_AUTH_TOKEN, spec, "rid").json() == {"error": "Missing Authentication Token"}
    rejected = gateway_response(LAMBDA_REJECTED, spec, "rid")
    assert rejected.status == 503 and rejected.json() == {"message": "Internal server error"}
    plain = gateway_response(LAMBDA_REJECTED, None, "rid")
    assert (plain.status, plain.header("x-amzn-RequestId")) == (500, "rid")


# ------------------------------------------------------------------------------------------------------- auth
def _signed_headers(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    service: str = "execute-api",
    key: str = CREDS.access_key_id,
    secret: str = CREDS.secret_access_key,
) -> dict[str, str]:
    request = AWSRequest(method=method, url=BASE_URL + path, data=body, headers={"Content-Type": "image/jpeg"})
    SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(request)
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in request.prepare().headers.items()}


def test_unsigned_request_to_a_sigv4_route_is_403_api_gateway_json() -> None:
    """SigV4 route, no signature: 403 {"message": "Missing Authentication Token"}, the function is not called."""
    function = FakeFunction(_echo)
    web = Client(_gateway(function, _spec(auth="AWS_IAM")))
    response = web.get("/health", base_url=BASE_URL)
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.get_data()) == {"message": "Missing Authentication Token"}
    assert function.events == []


def test_request_signed_for_execute_api_is_served() -> None:
    """A request signed by botocore's SigV4Auth for execute-api with an issued key reaches the function."""
    function = FakeFunction(_echo)
    web = Client(_gateway(function, _spec(auth="AWS_IAM")))
    response = web.post(
        "/predict?top_k=3",
        base_url=BASE_URL,
        data=JPEG_BYTES,
        headers=_signed_headers("POST", "/predict?top_k=3", JPEG_BYTES),
    )
    assert response.status_code == 200, response.get_data()
    assert json.loads(response.get_data())["isBase64Encoded"] is True
    assert function.events[0]["queryStringParameters"] == {"top_k": "3"}


@pytest.mark.parametrize(
    "bad",
    [
        {"service": "sagemaker"},  # signed for another service
        {"key": "AKIAUNKNOWN000000000"},  # a key the runtime never issued
        {"secret": "x" * 40},  # the right key, the wrong secret
    ],
)
def test_badly_signed_request_is_403_and_never_invoked(bad: dict[str, str]) -> None:
    """Another service's scope, an unknown key or a wrong secret: 403 JSON with x-amzn-ErrorType, no invocation."""
    function = FakeFunction(_echo)
    web = Client(_gateway(function, _spec(auth="AWS_IAM")))
    response = web.get("/health", base_url=BASE_URL, headers=_signed_headers("GET", "/health", **bad))
    assert response.status_code == 403
    assert "message" in json.loads(response.get_data())
    assert response.headers.get("x-amzn-ErrorType")
    assert function.events == []


def test_tampered_signed_request_is_refused() -> None:
    """A signature over a different path does not authorise this one."""
    web = Client(_gateway(FakeFunction(_echo), _spec(auth="AWS_IAM")))
    response = web.get("/health", base_url=BASE_URL, headers=_signed_headers("GET", "/predict"))
    assert response.status_code == 403


@pytest.mark.parametrize(("sent", "expected"), [(None, 403), ("wrong", 403), ("k-123", 200)])
def test_api_key_route_needs_the_runtimes_key(sent: str | None, expected: int) -> None:
    """API-key route: a missing or wrong x-api-key is 403 {"message": "Forbidden"}; the runtime's key is served."""
    web = Client(_gateway(FakeFunction(_echo), _spec(auth="API_KEY"), api_key="k-123"))
    response = web.get("/health", base_url=BASE_URL, headers={"x-api-key": sent} if sent else {})
    assert response.status_code == expected
    if expected == 403:
        assert json.loads(response.get_data()) == {"message": "Forbidden"}


def test_api_key_route_without_a_configured_key_refuses_everyone() -> None:
    """No key configured: nothing can authenticate to an API-key route (fail closed)."""
    web = Client(_gateway(FakeFunction(_echo), _spec(auth="API_KEY"), api_key=None))
    assert web.get("/health", base_url=BASE_URL, headers={"x-api-key": "anything"}).status_code == 403


# ------------------------------------------------------------------------------------------------------- real function
@pytest.fixture
def stdout_restored() -> Iterator[None]:
    """LocalFunction wraps ``sys.stdout`` in its router; unwrap it after the test (also under ``pytest -s``)."""
    yield
    while isinstance(sys.stdout, _RoutedStdout):
        sys.stdout = sys.stdout.fallback


def _local_function(tmp_path: Path, reserved: int | None) -> LocalFunction:
    code = tmp_path / "code"
    code.mkdir()
    (code / "gw_handler.py").write_text(
        "def handler(event, context):\n    return {'statusCode': 200, 'body': event['path']}\n"
    )
    spec = FunctionSpec("Fn", "gw_handler.handler", code, reserved_concurrency=reserved, timeout_s=5)
    return LocalFunction(spec, {}, lambda _text: None)


def test_throttled_invocation_gets_500_and_never_reaches_the_handler(tmp_path: Path, stdout_restored: None) -> None:
    """Reserved concurrency 1 and one call in flight: the second call is rejected by Lambda (500), not queued."""
    function = _local_function(tmp_path, reserved=1)
    release, started = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event["path"])
        started.set()
        release.wait(timeout=5)
        return {"statusCode": 200, "body": "{}"}

    function.handler = slow
    gateway = _gateway(function)
    first: list[Any] = []
    worker = threading.Thread(target=lambda: first.append(gateway.handle(HttpRequest("GET", "/health", []))))
    try:
        worker.start()
        assert started.wait(timeout=5)
        throttled = gateway.handle(HttpRequest("GET", "/health", []))
    finally:
        release.set()
        worker.join(timeout=10)
        function.close()
    assert throttled.status == 500
    assert throttled.json() == {"message": "Internal server error"}
    assert first[0].status == 200
    assert calls == ["/health"]
    assert function.throttled == 1


def test_event_over_the_lambda_payload_limit_is_rejected_before_the_handler(
    tmp_path: Path, stdout_restored: None
) -> None:
    """5 MB of JPEG is ~6.7 MB of base64: under API Gateway's 10 MB, over Lambda's 6 MB, so 413 and no call."""
    function = _local_function(tmp_path, reserved=None)
    calls: list[int] = []
    function.handler = lambda event, context: calls.append(1)
    try:
        response = _gateway(function).handle(
            HttpRequest("POST", "/predict", [("Content-Type", "image/jpeg")], b"x" * 5_000_000)
        )
    finally:
        function.close()
    assert response.status == 413
    assert response.json() == {"message": "Request Too Long"}
    assert calls == []


def test_wsgi_app_serves_a_real_function_end_to_end(tmp_path: Path, stdout_restored: None) -> None:
    """Through the WSGI entry point: the real function's body comes back with API Gateway's request id header."""
    function = _local_function(tmp_path, reserved=2)
    try:
        response = Client(_gateway(function)).get("/health?x=1", base_url=BASE_URL)
    finally:
        function.close()
    assert response.status_code == 200
    assert response.get_data() == b"/health"
    assert response.headers["x-amzn-RequestId"]
