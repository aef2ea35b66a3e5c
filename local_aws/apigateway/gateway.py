"""The REST API's request pipeline as a WSGI app: route, limits, stage throttle, auth, Lambda, response mapping.

Gateway responses are API Gateway's own (docs.aws.amazon.com/apigateway/latest/developerguide/
supported-gateway-response-types.html), overridable by the template's GatewayResponses exactly as on AWS:

- an unknown resource or method (TRACE, FOO, a typo'd path) is MISSING_AUTHENTICATION_TOKEN: 403
  ``{"message":"Missing Authentication Token"}`` (``sam local start-api`` answers the same);
- a method whose security is SigV4 needs a request signed for ``execute-api`` with credentials the runtime issued;
  an API-key method needs the runtime's ``x-api-key`` (API_KEY FORBIDDEN: 403 ``{"message":"Forbidden"}``);
- the Lambda service rejecting the invocation (throttled: reserved concurrency reached) is INTEGRATION_FAILURE: "If
  the Lambda API rejects the invocation request, API Gateway returns a 500 error code" (docs.aws.amazon.com/lambda/
  latest/dg/services-apigateway-errors.html), which the template maps to 429 + Retry-After;
- an event over Lambda's 6,291,456-byte payload limit is refused before the invocation ("N byte payload is too large
  for the RequestResponse invocation type (limit 6291456 bytes)" in the execution log) as REQUEST_TOO_LARGE, 413
  ``{"message": "Request Too Long"}`` with ``x-amzn-ErrorType: BadRequestException``, as users observe it
  (github.com/koki-develop/lgtm-generator/issues/10); never INTEGRATION_FAILURE, so never the template's 429;
- the function raising or answering a malformed proxy response: 502 ``{"message": "Internal server error"}``;
- the integration running past 29 s: INTEGRATION_TIMEOUT 504 ``{"message": "Endpoint request timed out"}``;
- a body over 10 MB: REQUEST_TOO_LARGE 413 (refused by the HTTP layer before it is read);
- the stage's MethodSettings throttle (token bucket; a method's own MethodSettings instead, where it has them)
  exceeded: THROTTLED 429 ``{"message":"Too Many Requests"}``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Request, Response

from local_aws.apigateway.proxy import (
    HttpRequest,
    HttpResponse,
    ProxyResponseError,
    build_proxy_event,
    map_proxy_response,
)
from local_aws.apigateway.spec import ApiSpec
from local_aws.auth.credentials import CredentialStore
from local_aws.auth.errors import AuthError, render_auth_error
from local_aws.auth.sigv4 import incoming_from_environ, verify
from local_aws.constants import API_GATEWAY_MAX_BYTES, API_INTEGRATION_TIMEOUT_S, REGION
from local_aws.lambda_runtime.runtime import FunctionError, LocalFunction, PayloadTooLarge, Throttled

LOGGER = logging.getLogger("local_aws.apigateway")

MISSING_AUTH_TOKEN = (403, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
API_KEY_FORBIDDEN = (403, "API_CONFIGURATION_ERROR", "Forbidden")
LAMBDA_REJECTED = (500, "INTEGRATION_FAILURE", "Internal server error")
LAMBDA_FAILED = (502, "DEFAULT_5XX", "Internal server error")
INTEGRATION_TIMEOUT = (504, "INTEGRATION_TIMEOUT", "Endpoint request timed out")
REQUEST_TOO_LARGE = (413, "REQUEST_TOO_LARGE", "Request Too Long")
EVENT_TOO_LARGE = (413, "REQUEST_TOO_LARGE", "Request Too Long", "BadRequestException")
STAGE_THROTTLED = (429, "THROTTLED", "Too Many Requests")
_ERROR_TYPES = {
    "MISSING_AUTHENTICATION_TOKEN": "IncompleteSignatureException",
    "API_CONFIGURATION_ERROR": "ForbiddenException",
    "REQUEST_TOO_LARGE": "RequestTooLargeException",
    "INTEGRATION_TIMEOUT": "InternalServerErrorException",
    "THROTTLED": "TooManyRequestsException",
}


def gateway_response(kind: tuple[Any, ...], spec: ApiSpec | None, request_id: str) -> HttpResponse:
    """An API Gateway-generated response, honouring the template's GatewayResponses overrides.

    ``kind`` is ``(status, response type, message)``, optionally with the ``x-amzn-ErrorType`` as a fourth item when
    it is not the response type's usual one.
    """
    status, response_type, message = kind[:3]
    error_type = kind[3] if len(kind) > 3 else _ERROR_TYPES.get(response_type, "InternalServerErrorException")
    body = json.dumps({"message": message})
    family = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
    overrides = spec.gateway_responses if spec else {}
    extra: tuple[tuple[str, str], ...] = ()
    for key in (response_type, family):
        if key in overrides:
            custom = overrides[key]
            status = custom.status or status
            if custom.body:
                body = custom.body.replace("$context.error.messageString", json.dumps(message))
                body = body.replace("$context.error.message", message)
            extra = custom.headers
            break
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", error_type),
        *extra,
    ]
    return HttpResponse(status=status, headers=headers, body=body.encode())


def api_error_renderer(spec: ApiSpec) -> Callable[[int, str, dict[str, str]], tuple[list[tuple[str, str]], bytes]]:
    """Transport errors on the API's port as API Gateway's gateway responses (the template's overrides included)."""

    def render(status: int, reason: str, headers: dict[str, str]) -> tuple[list[tuple[str, str]], bytes]:
        if status == 413:
            kind = REQUEST_TOO_LARGE
        elif status >= 500 and status != 501:
            kind = (500, "DEFAULT_5XX", "Internal server error")
        else:
            kind = (status, "DEFAULT_4XX", reason)
        response = gateway_response(kind, spec, str(uuid.uuid4()))
        return response.headers, response.body

    return render


class TokenBucket:
    """API Gateway's stage throttle: ``burst`` tokens, refilled at ``rate`` per second; no token → 429."""

    def __init__(self, rate: float | None, burst: int | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst if burst is not None else (rate or 0))
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Consume one token; False when the bucket is empty (the request is throttled)."""
        if self.rate is None:
            return True
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class ApiGateway:
    """The request pipeline (unit-testable without sockets: ``handle(HttpRequest, environ)``).

    Args:
        spec: the API from the template.
        function: the Lambda function behind every route.
        credentials: who may call SigV4 routes.
        api_key: the key API-key routes accept.
        port: the listening port (``X-Forwarded-Port`` in events).
    """

    def __init__(
        self,
        spec: ApiSpec,
        function: LocalFunction,
        credentials: CredentialStore,
        api_key: str | None = None,
        port: int = 3000,
    ) -> None:
        self.spec = spec
        self.function = function
        self.credentials = credentials
        self.api_key = api_key
        self.port = port
        self.bucket = TokenBucket(spec.throttle_rate, spec.throttle_burst)
        # A method with MethodSettings of its own has its own bucket instead of the stage's.
        self.method_buckets = {
            route: TokenBucket(*throttle)
            for route in spec.routes
            for key, throttle in spec.method_throttles.items()
            if key[1] == route.path and key[0] in ("*", route.method)
        }

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        body = request.get_data()
        http_request = HttpRequest(
            method=request.method,
            target=environ.get("REQUEST_URI") or request.full_path,
            headers=list(request.headers.items()),
            body=body,
            source_ip=request.remote_addr or "127.0.0.1",
            protocol=environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        )
        answer = self.handle(http_request, environ)
        response = Response(answer.body, status=answer.status)
        response.headers.clear()
        for key, value in answer.headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                response.headers.add(key, value)
        return response(environ, start_response)

    def _authenticate(
        self, auth: str, request: HttpRequest, environ: dict[str, Any], request_id: str
    ) -> HttpResponse | None:
        if auth == "AWS_IAM":
            try:
                verify(
                    incoming_from_environ(environ, request.body),
                    self.credentials,
                    region=REGION,
                    expected_service="execute-api",
                )
            except AuthError as exc:
                status, headers, body = render_auth_error(exc, "execute-api", request_id=request_id)
                return HttpResponse(status=status, headers=headers, body=body)
        elif auth == "API_KEY" and (self.api_key is None or request.header("x-api-key") != self.api_key):
            return gateway_response(API_KEY_FORBIDDEN, self.spec, request_id)
        return None

    def handle(self, request: HttpRequest, environ: dict[str, Any] | None = None) -> HttpResponse:
        """Serve one request end to end."""
        request_id = str(uuid.uuid4())
        found = self.spec.find(request.method, request.path)
        if found is None:
            return gateway_response(MISSING_AUTH_TOKEN, self.spec, request_id)
        route, params = found
        if len(request.body) > API_GATEWAY_MAX_BYTES:
            return gateway_response(REQUEST_TOO_LARGE, self.spec, request_id)
        if environ is not None:
            denied = self._authenticate(route.auth, request, environ, request_id)
            if denied is not None:
                return denied
        if not self.method_buckets.get(route, self.bucket).take():
            return gateway_response(STAGE_THROTTLED, self.spec, request_id)
        event = build_proxy_event(
            request, route, params, self.spec.binary_media_types, self.spec.stage_name, self.port, request_id
        )
        started = time.monotonic()
        try:
            output = self.function.invoke(event, request_id)
        except PayloadTooLarge as exc:
            LOGGER.warning("event too large for Lambda (%s); API Gateway answers REQUEST_TOO_LARGE", exc)
            return gateway_response(EVENT_TOO_LARGE, self.spec, request_id)
        except Throttled as exc:
            LOGGER.warning("Lambda throttled the invocation (%s); API Gateway answers INTEGRATION_FAILURE", exc)
            return gateway_response(LAMBDA_REJECTED, self.spec, request_id)
        except FunctionError as exc:
            LOGGER.warning("Lambda function error (%s: %s); API Gateway answers 502", exc.error_type, exc.message)
            kind = (
                INTEGRATION_TIMEOUT
                if exc.error_type == "Sandbox.Timedout" and self.function.spec.timeout_s >= API_INTEGRATION_TIMEOUT_S
                else LAMBDA_FAILED
            )
            return gateway_response(kind, self.spec, request_id)
        if time.monotonic() - started > API_INTEGRATION_TIMEOUT_S:
            return gateway_response(INTEGRATION_TIMEOUT, self.spec, request_id)
        try:
            response = map_proxy_response(output, self.spec.binary_media_types, request.header("Accept"))
        except ProxyResponseError as exc:
            LOGGER.warning("malformed Lambda proxy response: %s; API Gateway answers 502", exc)
            return gateway_response(LAMBDA_FAILED, self.spec, request_id)
        response.headers.append(("x-amzn-RequestId", request_id))
        return response
