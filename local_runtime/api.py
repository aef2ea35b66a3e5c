"""Local API Gateway (REST, Lambda proxy v1) in front of the real inference Lambda handler.

The routes, binary media types, reserved concurrency and the function's environment all come from ``template.yaml``
(through ``local_runtime.template``); nothing about the API is hard-coded here. The event and response mapping follow
``sam local start-api`` (samcli/local/apigw/event_constructor.py and local_apigw_service.py) and API Gateway's
documented proxy behaviour, so a handler that works here works behind the deployed REST API.

NOTE: like ``sam local start-api``, IAM (SigV4) auth and API keys are NOT enforced locally: every caller on 127.0.0.1
is let through. The deployed API enforces what template.yaml declares.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import importlib
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

LOGGER = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

# API Gateway REST hard limits (docs.aws.amazon.com/apigateway/latest/developerguide/limits.html): 10 MB request
# payload, 29 s default integration timeout. Lambda's synchronous invoke payload limit is 6,291,456 bytes
# (docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
MAX_API_PAYLOAD_BYTES = 10 * 1024 * 1024
MAX_LAMBDA_PAYLOAD_BYTES = 6_291_456
INTEGRATION_TIMEOUT_S = 29.0

# Gateway responses, as API Gateway sends them when no GatewayResponses override exists in the template
# (docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html):
# - an unknown resource/method is MISSING_AUTHENTICATION_TOKEN: 403 {"message":"Missing Authentication Token"}
#   (sam local start-api answers the same; a 404 would hide a route typo that the cloud also answers with 403);
# - the Lambda *service* rejecting the invocation (throttled by ReservedConcurrentExecutions, or payload too large):
#   "If the Lambda API rejects the invocation request, API Gateway returns a 500 error code ... the body of the
#   response from API Gateway is {"message": "Internal server error"}"
#   (docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html). A REST proxy integration does NOT forward
#   Lambda's 429 TooManyRequestsException; a 429 reaches clients only if the API maps the INTEGRATION_FAILURE /
#   DEFAULT_5XX gateway response to it, which this emulator honours when template.yaml declares it;
# - the function raising or returning a malformed proxy response: 502 {"message": "Internal server error"};
# - the integration running past 29 s: INTEGRATION_TIMEOUT 504 {"message": "Endpoint request timed out"};
# - a request body over 10 MB: REQUEST_TOO_LARGE 413;
# - the stage's MethodSettings throttle (token bucket, ThrottlingRateLimit/ThrottlingBurstLimit) exceeded:
#   THROTTLED 429 {"message":"Too Many Requests"} (docs.aws.amazon.com/apigateway/latest/developerguide/
#   api-gateway-request-throttling.html). This one is API Gateway's own throttle, before Lambda is involved.
MISSING_AUTH_TOKEN = (403, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
LAMBDA_REJECTED = (500, "INTEGRATION_FAILURE", "Internal server error")
LAMBDA_FAILED = (502, "DEFAULT_5XX", "Internal server error")
INTEGRATION_TIMEOUT = (504, "INTEGRATION_TIMEOUT", "Endpoint request timed out")
REQUEST_TOO_LARGE = (413, "REQUEST_TOO_LARGE", "Request Too Long")
STAGE_THROTTLED = (429, "THROTTLED", "Too Many Requests")

_ALLOWED_RESPONSE_KEYS = {"statusCode", "body", "headers", "multiValueHeaders", "isBase64Encoded", "base64Encoded"}


class ApiConfigError(ValueError):
    """template.yaml does not describe an API this emulator can serve."""


# --------------------------------------------------------------------------------------------------------------------
# API description
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One API Gateway resource + method, e.g. ``POST /predict`` or ``ANY /items/{id}``."""

    method: str
    path: str

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Return the path parameters when this route serves ``method path``, else None."""
        if self.method not in ("ANY", method.upper()):
            return None
        found = _path_regex(self.path).fullmatch(path)
        if found is None:
            return None
        return {name.rstrip("+"): value for name, value in found.groupdict().items()}


def _path_regex(template_path: str) -> re.Pattern[str]:
    pattern = ""
    for part in re.split(r"(\{[^}]+\})", template_path):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            group = re.sub(r"\W", "_", name.rstrip("+"))
            pattern += f"(?P<{group}>.+)" if name.endswith("+") else f"(?P<{group}>[^/]+)"
        else:
            pattern += re.escape(part)
    return re.compile(pattern.rstrip("/") or "/")


@dataclass
class FunctionSpec:
    """What Lambda needs to run the function: handler, code, environment, concurrency and timeout."""

    logical_id: str
    handler: str
    code_dir: Path
    environment: dict[str, str] = field(default_factory=dict)
    reserved_concurrency: int | None = None
    timeout_s: float = 30.0
    memory_mb: int = 128
    function_name: str = ""

    def __post_init__(self) -> None:
        if not self.function_name:
            self.function_name = self.logical_id


@dataclass(frozen=True)
class GatewayResponse:
    """One GatewayResponses entry: status code, JSON body template and static headers (quotes stripped)."""

    status: int | None = None
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class ApiSpec:
    """The REST API as template.yaml declares it."""

    function: FunctionSpec
    routes: list[Route]
    binary_media_types: list[str] = field(default_factory=list)
    stage_name: str = "Prod"
    # GatewayResponses overrides: response type → GatewayResponse (status, body template, static headers)
    gateway_responses: dict[str, GatewayResponse] = field(default_factory=dict)
    # Stage-wide MethodSettings throttling ("/*" "*"): steady rate (requests/s) and burst (bucket size).
    throttle_rate: float | None = None
    throttle_burst: int | None = None

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """Return the route serving ``method path`` and its path parameters."""
        for route in self.routes:
            params = route.match(method, path)
            if params is not None:
                return route, params
        return None


def normalize_media_type(value: str) -> str:
    """BinaryMediaTypes are written ``image~1jpeg`` in templates because '/' is a JSON-pointer separator there."""
    return value.replace("~1", "/").strip().lower()


def is_binary_media_type(content_type: str | None, binary_media_types: list[str]) -> bool:
    """API Gateway's rule: the request Content-Type (parameters ignored) matches one of BinaryMediaTypes.

    Wildcards such as ``image/*`` and ``*/*`` match as they do on API Gateway.
    """
    if not content_type:
        return False
    mimetype = content_type.split(";", 1)[0].strip().lower()
    return any(fnmatch.fnmatchcase(mimetype, pattern) for pattern in binary_media_types)


def api_spec_from_template(
    template_path: Path = DEFAULT_TEMPLATE,
    function_logical_id: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> ApiSpec:
    """Build the API description from template.yaml, resolved by ``local_runtime.template``.

    Args:
        template_path: the SAM template.
        function_logical_id: the function to serve; default: the only function with Api events.
        overrides: template parameter overrides (samconfig-style), e.g. ``{"LambdaReservedConcurrency": "2"}``.

    Returns:
        The API spec: routes, binary media types, stage, gateway responses and the function to invoke.

    Raises:
        ApiConfigError: no (or more than one) function with Api events, or an API this emulator cannot serve.
    """
    from local_runtime import template as tpl

    template = tpl.load_template(template_path)
    resources: dict[str, Any] = template.get("Resources", {})
    candidates = [
        lid for lid, res in resources.items() if res.get("Type") == "AWS::Serverless::Function" and _api_events(res)
    ]
    if function_logical_id is None:
        if len(candidates) != 1:
            raise ApiConfigError(f"expected exactly one function with Api events in {template_path}, got {candidates}")
        function_logical_id = candidates[0]
    elif function_logical_id not in candidates:
        raise ApiConfigError(f"{function_logical_id!r} has no Api events; functions with Api events: {candidates}")

    resolver = tpl.make_resolver(template, dict(overrides or {}))

    def prop(name: str) -> Any:
        return tpl.function_property(template, function_logical_id, name, dict(overrides or {}))

    routes: list[Route] = []
    api_ids: set[str] = set()
    for event in _api_events(resources[function_logical_id]):
        props = event.get("Properties", {})
        routes.append(Route(method=str(props["Method"]).upper(), path=str(props["Path"])))
        rest_api = props.get("RestApiId")
        if isinstance(rest_api, Mapping) and "Ref" in rest_api:
            api_ids.add(str(rest_api["Ref"]))
        elif isinstance(rest_api, str):
            api_ids.add(rest_api)
    if len(api_ids) > 1:
        raise ApiConfigError(f"{function_logical_id!r} is attached to several APIs {sorted(api_ids)}; serve one")

    # Without RestApiId, SAM creates the implicit ServerlessRestApi with stage "Prod" and Globals.Api settings.
    api_props: dict[str, Any] = dict((template.get("Globals") or {}).get("Api") or {})
    if api_ids:
        api_props.update(resources[next(iter(api_ids))].get("Properties", {}) or {})
    api_props = resolver.resolve(api_props)
    stage = str(api_props.get("StageName", "Prod"))
    binary = [normalize_media_type(str(t)) for t in api_props.get("BinaryMediaTypes", []) or []]
    gateway_responses: dict[str, GatewayResponse] = {}
    for rtype, cfg in (api_props.get("GatewayResponses") or {}).items():
        status = cfg.get("StatusCode")
        body = (cfg.get("ResponseTemplates") or {}).get("application/json")
        # Static header values are quoted API Gateway mapping literals ("'1'"); other sources can't be emulated.
        headers = tuple(
            (str(name), str(value)[1:-1])
            for name, value in ((cfg.get("ResponseParameters") or {}).get("Headers") or {}).items()
            if str(value).startswith("'") and str(value).endswith("'")
        )
        gateway_responses[str(rtype)] = GatewayResponse(int(status) if status is not None else None, body, headers)
    throttle_rate: float | None = None
    throttle_burst: int | None = None
    for setting in api_props.get("MethodSettings") or []:
        if setting.get("ResourcePath") == "/*" and setting.get("HttpMethod") == "*":
            if setting.get("ThrottlingRateLimit") is not None:
                throttle_rate = float(setting["ThrottlingRateLimit"])
            if setting.get("ThrottlingBurstLimit") is not None:
                throttle_burst = int(setting["ThrottlingBurstLimit"])

    code_uri = prop("CodeUri")
    if not isinstance(code_uri, str):
        raise ApiConfigError(f"{function_logical_id}: CodeUri must be a local directory, got {code_uri!r}")
    code_dir = Path(code_uri)
    if not code_dir.is_absolute():
        code_dir = Path(template_path).resolve().parent / code_dir
    reserved = prop("ReservedConcurrentExecutions")
    function = FunctionSpec(
        logical_id=function_logical_id,
        handler=str(prop("Handler")),
        code_dir=code_dir,
        environment=tpl.function_environment(template, function_logical_id, dict(overrides or {})),
        reserved_concurrency=int(reserved) if reserved is not None else None,
        timeout_s=float(prop("Timeout") or 3),
        memory_mb=int(prop("MemorySize") or 128),
        function_name=str(prop("FunctionName") or function_logical_id),
    )
    return ApiSpec(
        function=function,
        routes=routes,
        binary_media_types=binary,
        stage_name=stage,
        gateway_responses=gateway_responses,
        throttle_rate=throttle_rate,
        throttle_burst=throttle_burst,
    )


def _api_events(resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    events = (resource.get("Properties") or {}).get("Events") or {}
    return [e for e in events.values() if isinstance(e, dict) and e.get("Type") == "Api"]


# --------------------------------------------------------------------------------------------------------------------
# Event and response mapping (pure functions: unit-tested without sockets)
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class HttpRequest:
    """An HTTP request as received, before API Gateway maps it."""

    method: str
    target: str  # path + optional ?query, as on the request line
    headers: list[tuple[str, str]]
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"

    @property
    def path(self) -> str:
        return urlsplit(self.target).path or "/"

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    def header(self, name: str) -> str | None:
        """Last value of a header, case-insensitively (what API Gateway puts in ``headers``)."""
        found = None
        for key, value in self.headers:
            if key.lower() == name.lower():
                found = value
        return found


def build_proxy_event(
    request: HttpRequest,
    route: Route,
    path_parameters: Mapping[str, str],
    binary_media_types: list[str],
    stage: str = "Prod",
    port: int = 3000,
    request_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Map an HTTP request to the API Gateway REST proxy (payload v1) event.

    Args:
        request: the HTTP request.
        route: the matched route (its path is the ``resource``).
        path_parameters: values of the route's ``{params}``.
        binary_media_types: the API's BinaryMediaTypes (normalized, ``image/jpeg``).
        stage: the stage name.
        port: the listening port (``X-Forwarded-Port``).
        request_id: the request id; a new UUID by default.
        now: the request time (tests pin it).

    Returns:
        The event dict, as the Lambda handler receives it.
    """
    request_id = request_id or str(uuid.uuid4())
    now = now or datetime.now(UTC)
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    # API Gateway keeps the header names as the client sent them; repeated headers are joined in multiValueHeaders
    # and the last one wins in headers.
    for key, value in request.headers:
        headers[key] = value
        multi_headers.setdefault(key, []).append(value)
    for key, value in (
        ("X-Forwarded-For", request.source_ip),
        ("X-Forwarded-Port", str(port)),
        ("X-Forwarded-Proto", "http"),
    ):
        if key not in headers:
            headers[key] = value
            multi_headers[key] = [value]

    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for key, value in parse_qsl(request.query, keep_blank_values=True):
        query[key] = value
        multi_query.setdefault(key, []).append(value)

    is_base64 = is_binary_media_type(request.header("Content-Type"), binary_media_types)
    body: str | None
    if not request.body:
        body = None
    elif is_base64:
        body = base64.b64encode(request.body).decode("ascii")
    else:
        # A text media type carrying bytes that are not UTF-8 reaches Lambda mangled, as on API Gateway.
        body = request.body.decode("utf-8", errors="replace")

    host = request.header("Host") or f"127.0.0.1:{port}"
    return {
        "resource": route.path,
        "path": request.path,
        "httpMethod": request.method.upper(),
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "123456",
            "resourcePath": route.path,
            "httpMethod": request.method.upper(),
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{stage}{request.path}",
            "accountId": ACCOUNT_ID,
            "protocol": request.protocol,
            "stage": stage,
            "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": request.source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": request.header("User-Agent"),
                "user": None,
                "apiKey": None,
            },
            "domainName": host,
            "apiId": "1234567890",
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


@dataclass
class HttpResponse:
    """What the client receives."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """First value of a header, case-insensitively."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class ProxyResponseError(ValueError):
    """The function returned something API Gateway cannot map (API Gateway answers 502)."""


def _accepts_binary(accept: str | None, content_type: str, binary_media_types: list[str]) -> bool:
    """REST APIs send a base64 body as binary when the response type is binary and the client accepts it."""
    if not is_binary_media_type(content_type, binary_media_types):
        return False
    if not accept:
        return True
    mimetype = content_type.split(";", 1)[0].strip().lower()
    for item in accept.split(","):
        wanted = item.split(";", 1)[0].strip().lower()
        if wanted and fnmatch.fnmatchcase(mimetype, wanted):
            return True
    return False


def map_proxy_response(output: Any, binary_media_types: list[str], accept: str | None = None) -> HttpResponse:
    """Map a Lambda proxy (v1) response dict to the HTTP response, as a REST API does.

    Args:
        output: what the handler returned.
        binary_media_types: the API's BinaryMediaTypes.
        accept: the request's Accept header (decides whether a base64 body goes out as binary).

    Returns:
        The HTTP response.

    Raises:
        ProxyResponseError: the output is not a valid proxy response (API Gateway: 502).
    """
    if not isinstance(output, dict):
        raise ProxyResponseError(f"Lambda returned {type(output).__name__} instead of a proxy response object")
    invalid = set(output) - _ALLOWED_RESPONSE_KEYS
    if invalid:
        raise ProxyResponseError(f"invalid API Gateway response keys: {sorted(invalid)}")
    try:
        status = int(output.get("statusCode") or 200)
    except (TypeError, ValueError) as exc:
        raise ProxyResponseError(f"statusCode must be an integer, got {output.get('statusCode')!r}") from exc
    if not 100 <= status <= 599:
        raise ProxyResponseError(f"statusCode out of range: {status}")

    merged: list[tuple[str, str]] = []
    multi = output.get("multiValueHeaders") or {}
    single = output.get("headers") or {}
    if not isinstance(multi, dict) or not isinstance(single, dict):
        raise ProxyResponseError("headers and multiValueHeaders must be objects")
    # API Gateway merges both maps; a key/value pair present in both appears once.
    for key, values in multi.items():
        if not isinstance(values, list):
            raise ProxyResponseError(f"multiValueHeaders[{key!r}] must be a list")
        merged.extend((str(key), str(v)) for v in values)
    for key, value in single.items():
        if str(value) in [str(v) for v in multi.get(key, [])]:
            continue
        merged.append((str(key), str(value)))
    if not any(k.lower() == "content-type" for k, _ in merged):
        merged.append(("Content-Type", "application/json"))
    content_type = next(v for k, v in merged if k.lower() == "content-type")

    flag = output.get("base64Encoded", output.get("isBase64Encoded", False))
    if isinstance(flag, str) and flag.lower() in ("true", "false"):
        flag = flag.lower() == "true"
    if not isinstance(flag, bool):
        raise ProxyResponseError(f"isBase64Encoded must be a boolean, got {flag!r}")

    raw_body = output.get("body")
    if raw_body is None:
        body = b""
    elif not isinstance(raw_body, str):
        raise ProxyResponseError(f"body must be a string, got {type(raw_body).__name__}")
    elif flag and _accepts_binary(accept, content_type, binary_media_types):
        try:
            body = base64.b64decode(raw_body, validate=True)
        except ValueError as exc:
            raise ProxyResponseError("isBase64Encoded is true but body is not valid base64") from exc
    else:
        body = raw_body.encode("utf-8")
    return HttpResponse(status=status, headers=merged, body=body)


def gateway_response(kind: tuple[int, str, str], spec: ApiSpec | None, request_id: str) -> HttpResponse:
    """An API Gateway-generated error response, honouring the template's GatewayResponses overrides."""
    status, response_type, message = kind
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
        ("x-amzn-ErrorType", _ERROR_TYPES.get(response_type, "InternalServerErrorException")),
        *extra,
    ]
    return HttpResponse(status=status, headers=headers, body=body.encode())


_ERROR_TYPES = {
    "MISSING_AUTHENTICATION_TOKEN": "IncompleteSignatureException",
    "REQUEST_TOO_LARGE": "RequestTooLargeException",
    "INTEGRATION_TIMEOUT": "InternalServerErrorException",
    "THROTTLED": "TooManyRequestsException",
}


# --------------------------------------------------------------------------------------------------------------------
# Concurrency (ReservedConcurrentExecutions)
# --------------------------------------------------------------------------------------------------------------------


class ConcurrencyLimiter:
    """At most ``limit`` invocations at once; the excess is rejected at once, as Lambda throttles (no queueing)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._sem = threading.BoundedSemaphore(limit) if limit else None
        self._lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.throttled = 0

    @contextlib.contextmanager
    def slot(self) -> Iterator[bool]:
        """Yield True when the invocation may run, False when it is throttled."""
        if self.limit == 0:  # reserved concurrency 0 = the function is switched off
            with self._lock:
                self.throttled += 1
            yield False
            return
        if self._sem is not None and not self._sem.acquire(blocking=False):
            with self._lock:
                self.throttled += 1
            yield False
            return
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            yield True
        finally:
            with self._lock:
                self.in_flight -= 1
            if self._sem is not None:
                self._sem.release()


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


# --------------------------------------------------------------------------------------------------------------------
# Lambda invocation (in-process, the real handler)
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class LambdaContext:
    """The attributes of the Python runtime's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's Timeout."""
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def load_handler(function: FunctionSpec) -> Callable[[dict[str, Any], Any], Any]:
    """Import the handler the way a Lambda cold start does: CodeUri on sys.path, ``module.function``, fresh modules.

    Modules already imported from CodeUri (say, by tests in the same process) are not reused: the handler gets its own
    fresh copies, so module-level state (settings, clients) is built from this function's environment. The previous
    entries of ``sys.modules`` are put back afterwards, so other importers keep theirs.

    Raises:
        ApiConfigError: the handler string is malformed or the module has no such function.
    """
    module_name, _, attr = function.handler.rpartition(".")
    if not module_name or not attr:
        raise ApiConfigError(f"Handler must look like 'module.function', got {function.handler!r}")
    code_dir = function.code_dir.resolve()
    if not code_dir.is_dir():
        raise ApiConfigError(f"CodeUri {code_dir} of {function.logical_id} is not a directory")

    def from_code_dir(module: Any) -> bool:
        file = getattr(module, "__file__", None)
        return isinstance(file, str) and Path(file).resolve().is_relative_to(code_dir)

    previous = {name: mod for name, mod in sys.modules.items() if from_code_dir(mod)}
    for name in previous:
        del sys.modules[name]
    sys.path.insert(0, str(code_dir))
    try:
        module = importlib.import_module(module_name)
    finally:
        sys.path.remove(str(code_dir))
        for name in [n for n, m in sys.modules.items() if from_code_dir(m)]:
            del sys.modules[name]
        sys.modules.update(previous)
    if not from_code_dir(module):
        raise ApiConfigError(
            f"handler module {module_name!r} resolved to {module.__file__}, outside CodeUri {code_dir}"
        )
    handler = getattr(module, attr, None)
    if not callable(handler):
        raise ApiConfigError(f"{function.handler!r}: module {module_name!r} has no callable {attr!r}")
    return handler


def lambda_environment(function: FunctionSpec, sagemaker_url: str | None) -> dict[str, str]:
    """The environment the function runs with: its template Environment plus what the Lambda runtime sets."""
    env = {
        "AWS_REGION": os.environ.get("AWS_REGION", REGION),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", REGION),
        "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.function_name}",
        "LAMBDA_TASK_ROOT": str(function.code_dir),
        # The local SageMaker needs no real credentials, but botocore refuses to sign without some.
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
        # There is no X-Ray daemon locally (sam local has none either); Powertools' Tracer becomes a no-op.
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    env.update(function.environment)
    if sagemaker_url:
        env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = sagemaker_url
        env["AWS_ENDPOINT_URL_SAGEMAKER"] = sagemaker_url
    return env


class ApiGateway:
    """The request pipeline without the socket: route, size checks, throttling, invoke, map (unit-testable)."""

    def __init__(
        self,
        spec: ApiSpec,
        handler: Callable[[dict[str, Any], Any], Any],
        port: int = 3000,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.handler = handler
        self.port = port
        self.limiter = ConcurrencyLimiter(spec.function.reserved_concurrency)
        self.bucket = TokenBucket(spec.throttle_rate, spec.throttle_burst)
        self._log = log or LOGGER.info

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Serve one request end to end."""
        request_id = str(uuid.uuid4())
        found = self.spec.find(request.method, request.path)
        if found is None:
            return gateway_response(MISSING_AUTH_TOKEN, self.spec, request_id)
        if len(request.body) > MAX_API_PAYLOAD_BYTES:
            return gateway_response(REQUEST_TOO_LARGE, self.spec, request_id)
        if not self.bucket.take():
            return gateway_response(STAGE_THROTTLED, self.spec, request_id)
        route, params = found
        event = build_proxy_event(
            request, route, params, self.spec.binary_media_types, self.spec.stage_name, self.port, request_id
        )
        payload_size = len(json.dumps(event))
        if payload_size > MAX_LAMBDA_PAYLOAD_BYTES:
            self._log(
                f"Lambda rejected the invocation (RequestEntityTooLargeException: event is {payload_size} bytes, "
                f"limit {MAX_LAMBDA_PAYLOAD_BYTES}); API Gateway answers 500"
            )
            return gateway_response(LAMBDA_REJECTED, self.spec, request_id)
        with self.limiter.slot() as allowed:
            if not allowed:
                self._log(
                    f"Lambda throttled the invocation (TooManyRequestsException: "
                    f"ReservedFunctionConcurrentInvocationLimitExceeded, limit {self.limiter.limit}); "
                    "API Gateway answers 500"
                )
                return gateway_response(LAMBDA_REJECTED, self.spec, request_id)
            return self._invoke(event, request, request_id)

    def _invoke(self, event: dict[str, Any], request: HttpRequest, request_id: str) -> HttpResponse:
        fn = self.spec.function
        started = time.monotonic()
        context = LambdaContext(
            function_name=fn.function_name,
            memory_limit_in_mb=fn.memory_mb,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{fn.function_name}",
            aws_request_id=request_id,
            deadline=started + fn.timeout_s,
            log_group_name=f"/aws/lambda/{fn.function_name}",
        )
        try:
            # NOTE: round-trip through JSON like the Lambda runtime, so the handler gets plain JSON types only.
            output = self.handler(json.loads(json.dumps(event)), context)
            output = json.loads(json.dumps(output))
        except Exception as exc:  # the function errored: API Gateway hides the details behind a 502
            self._log(f"Lambda function error ({type(exc).__name__}: {exc}); API Gateway answers 502")
            LOGGER.debug("function error", exc_info=True)
            return gateway_response(LAMBDA_FAILED, self.spec, request_id)
        elapsed = time.monotonic() - started
        if elapsed > min(fn.timeout_s, INTEGRATION_TIMEOUT_S):
            self._log(f"invocation took {elapsed:.1f}s, over the function/integration timeout")
            kind = INTEGRATION_TIMEOUT if elapsed > INTEGRATION_TIMEOUT_S else LAMBDA_FAILED
            return gateway_response(kind, self.spec, request_id)
        try:
            response = map_proxy_response(output, self.spec.binary_media_types, request.header("Accept"))
        except ProxyResponseError as exc:
            self._log(f"malformed Lambda proxy response: {exc}; API Gateway answers 502")
            return gateway_response(LAMBDA_FAILED, self.spec, request_id)
        response.headers.append(("x-amzn-RequestId", request_id))
        return response


# --------------------------------------------------------------------------------------------------------------------
# The HTTP server
# --------------------------------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True
    gateway: ApiGateway
    access_log: bool


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections, as they do with API Gateway
    # NOTE: http.server writes the headers and the body in separate send() calls; with Nagle on, a keep-alive
    # client's delayed ACK then stalls every response by ~40 ms on Linux. TCP_NODELAY removes the stall.
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_API_PAYLOAD_BYTES:
            # Refuse without reading 10+ MB into memory.
            response = gateway_response(REQUEST_TOO_LARGE, self.server.gateway.spec, str(uuid.uuid4()))
            self.close_connection = True
        else:
            body = self.rfile.read(length) if length else b""
            request = HttpRequest(
                method=self.command,
                target=self.path,
                headers=[(k, v) for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")],
                body=body,
                source_ip=self.client_address[0],
                protocol=self.request_version,
            )
            response = self.server.gateway.handle(request)
        self.send_response(response.status)
        for key, value in response.headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.access_log:
            sys.stderr.write(f"{self.address_string()} - - [{self.log_date_time_string()}] {format % args}\n")


class LocalApi:
    """``sam local start-api`` for this project, without Docker: the real handler, in-process, on 127.0.0.1.

    Example:
        >>> api = LocalApi(home, sagemaker_url=server.url).start()
        >>> requests.post(f"{api.url}/predict", data=jpeg, headers={"Content-Type": "image/jpeg"})
    """

    def __init__(
        self,
        home: Path | None,
        sagemaker_url: str | None,
        host: str = "127.0.0.1",
        port: int = 3000,
        template_path: Path = DEFAULT_TEMPLATE,
        spec: ApiSpec | None = None,
        overrides: Mapping[str, str] | None = None,
        access_log: bool = False,
    ) -> None:
        self.home = home
        self.sagemaker_url = sagemaker_url
        self.host = host
        self.port = port
        self.spec = spec or api_spec_from_template(template_path, overrides=overrides)
        self.access_log = access_log
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._saved_env: dict[str, str | None] = {}
        self.gateway: ApiGateway | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:3000``."""
        if self._server is None:
            raise RuntimeError("LocalApi is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> LocalApi:
        """Set the function's environment, import its handler (a cold start) and listen in a background thread."""
        # NOTE: the handler runs in this process, so its environment is this process's os.environ; it is restored
        # by stop(). Set before the import so module-level configuration (clients, ENDPOINT_NAME) sees it.
        env = lambda_environment(self.spec.function, self.sagemaker_url)
        for key, value in env.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        try:
            handler = load_handler(self.spec.function)
            server = _Server((self.host, self.port), _Handler)
        except BaseException:
            self._restore_env()
            raise
        self.gateway = ApiGateway(self.spec, handler, port=server.server_address[1], log=LOGGER.warning)
        server.gateway = self.gateway
        server.access_log = self.access_log
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="local-api", daemon=True)
        self._thread.start()
        LOGGER.info("local API on %s: %s", self.url, ", ".join(f"{r.method} {r.path}" for r in self.spec.routes))
        return self

    def stop(self) -> None:
        """Stop listening and restore the environment."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._restore_env()

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}

    def __enter__(self) -> LocalApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
