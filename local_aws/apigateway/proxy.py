"""API Gateway's REST proxy integration (payload v1): the event a request becomes, and the response a Lambda
proxy answer becomes.

The mapping follows ``sam local start-api`` (samcli/local/apigw/event_constructor.py, local_apigw_service.py) and API
Gateway's documented proxy behaviour, so a handler that works here works behind the deployed REST API. Pure
functions: unit-tested without sockets.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local_aws.apigateway.spec import Route, is_binary_media_type
from local_aws.constants import ACCOUNT_ID

_ALLOWED_RESPONSE_KEYS = {"statusCode", "body", "headers", "multiValueHeaders", "isBase64Encoded", "base64Encoded"}


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
