"""local_aws.apigateway.proxy: an HTTP request becomes the REST proxy (v1) event, a Lambda answer the HTTP response."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from local_aws.apigateway.proxy import HttpRequest, ProxyResponseError, build_proxy_event, map_proxy_response
from local_aws.apigateway.spec import Route

BINARY = ["image/jpeg", "image/png", "application/x-image"]
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01"


def test_binary_request_is_base64_encoded_with_flag() -> None:
    """A binary media type arrives base64-encoded with isBase64Encoded, and the requestContext is API Gateway's."""
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
    assert (event["httpMethod"], event["resource"], event["path"]) == ("POST", "/predict", "/predict")
    # last value wins in queryStringParameters, all values in the multi-value map, blanks kept
    assert event["queryStringParameters"] == {"top_k": "4", "x": ""}
    assert event["multiValueQueryStringParameters"] == {"top_k": ["3", "4"], "x": [""]}
    ctx = event["requestContext"]
    assert ctx["requestId"] == "req-1" and ctx["extendedRequestId"] == "req-1"
    assert ctx["stage"] == "dev"
    assert ctx["resourcePath"] == "/predict"
    assert ctx["path"] == "/dev/predict"
    assert ctx["accountId"] == "123456789012"
    assert ctx["requestTime"] == "02/Jan/2024:03:04:05 +0000"
    assert ctx["requestTimeEpoch"] == 1704164645000
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["domainName"] == "127.0.0.1:3000"
    assert event["headers"]["Content-Type"] == "image/jpeg"
    assert event["headers"]["X-Forwarded-Port"] == "3000"
    assert event["multiValueHeaders"]["Content-Type"] == ["image/jpeg"]
    json.dumps(event)  # the event must be pure JSON, like the one Lambda delivers


def test_text_request_stays_text_and_empty_fields_are_null() -> None:
    """A JSON body stays text; absent query, path parameters and body are null, as API Gateway sends them."""
    body = json.dumps({"image": "abc", "top_k": 2}).encode()
    request = HttpRequest("POST", "/predict", [("content-type", "application/json; charset=utf-8")], body)
    event = build_proxy_event(request, Route("POST", "/predict"), {}, BINARY)
    assert event["isBase64Encoded"] is False
    assert json.loads(event["body"]) == {"image": "abc", "top_k": 2}
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None
    assert event["stageVariables"] is None
    assert event["headers"]["content-type"] == "application/json; charset=utf-8"  # client's header case is kept

    get = build_proxy_event(HttpRequest("GET", "/health", []), Route("GET", "/health"), {}, BINARY)
    assert get["body"] is None and get["isBase64Encoded"] is False


def test_text_body_that_is_not_utf8_reaches_lambda_mangled_not_as_an_error() -> None:
    """Bytes that are not UTF-8 under a text media type are replaced (U+FFFD), never raised."""
    request = HttpRequest("POST", "/predict", [("Content-Type", "text/plain")], b"ok\xff")
    event = build_proxy_event(request, Route("POST", "/predict"), {}, BINARY)
    assert event["body"] == "ok\ufffd" and event["isBase64Encoded"] is False


def test_repeated_headers_go_to_multi_value_headers() -> None:
    """Repeated headers: the last one in ``headers``, all of them in ``multiValueHeaders``."""
    request = HttpRequest("GET", "/health", [("X-Trace", "a"), ("X-Trace", "b")])
    event = build_proxy_event(request, Route("GET", "/health"), {}, BINARY)
    assert event["headers"]["X-Trace"] == "b"
    assert event["multiValueHeaders"]["X-Trace"] == ["a", "b"]


def test_path_parameters_and_client_forwarded_headers_are_kept() -> None:
    """Path parameters are the route's; an X-Forwarded-* header the client sent is not overwritten."""
    request = HttpRequest("GET", "/models/abc", [("X-Forwarded-Proto", "https")], source_ip="10.0.0.7")
    event = build_proxy_event(request, Route("GET", "/models/{name}"), {"name": "abc"}, BINARY)
    assert event["pathParameters"] == {"name": "abc"}
    assert event["resource"] == "/models/{name}"
    assert event["headers"]["X-Forwarded-Proto"] == "https"
    assert event["headers"]["X-Forwarded-For"] == "10.0.0.7"


def test_event_has_the_same_shape_as_the_recorded_api_gateway_fixture(
    event_loader: Callable[[str], dict[str, Any]],
) -> None:
    """The built event has the keys of a recorded API Gateway event (tests/events/apigw_predict_jpeg.json)."""
    recorded = event_loader("apigw_predict_jpeg")
    request = HttpRequest("POST", "/predict?top_k=3", [("Content-Type", "image/jpeg")], JPEG_BYTES)
    event = build_proxy_event(request, Route("POST", "/predict"), {}, BINARY)
    assert set(event) == set(recorded)
    assert set(event["requestContext"]) == set(recorded["requestContext"])
    # the fixture keeps only the identity fields the handler reads; API Gateway sends more
    assert set(recorded["requestContext"]["identity"]) <= set(event["requestContext"]["identity"])
    assert event["queryStringParameters"] == recorded["queryStringParameters"]
    assert event["isBase64Encoded"] == recorded["isBase64Encoded"]


def test_http_request_header_lookup_is_case_insensitive_and_last_wins() -> None:
    """``HttpRequest.header`` answers like API Gateway's ``headers`` map: any case, last value."""
    request = HttpRequest("GET", "/health?a=1", [("Accept", "text/plain"), ("accept", "application/json")])
    assert request.header("ACCEPT") == "application/json"
    assert request.header("X-Missing") is None
    assert (request.path, request.query) == ("/health", "a=1")


def test_response_mapping_merges_headers_and_defaults_content_type() -> None:
    """headers and multiValueHeaders merge (a shared pair once); no Content-Type means application/json."""
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
    assert response.header("x-model-version") == "v1"
    assert [v for k, v in response.headers if k == "X-Dup"] == ["a", "b"]
    assert response.json() == {"ok": True}


def test_response_without_status_or_body_is_an_empty_200() -> None:
    """An empty proxy object is a valid answer: status 200, empty body."""
    response = map_proxy_response({}, BINARY)
    assert (response.status, response.body) == (200, b"")


def test_response_base64_body_is_decoded_only_for_binary_types_the_client_accepts() -> None:
    """A base64 body goes out as binary only for a binary media type the client's Accept allows."""
    png = b"\x89PNG\r\n\x1a\n"
    output = {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png"},
        "body": base64.b64encode(png).decode(),
        "isBase64Encoded": True,
    }
    assert map_proxy_response(output, BINARY, accept="image/png").body == png
    assert map_proxy_response(output, BINARY, accept="image/*").body == png
    assert map_proxy_response(output, BINARY, accept=None).body == png
    # a client that does not accept the binary type gets the base64 text, as from a REST API
    assert map_proxy_response(output, BINARY, accept="application/json").body == base64.b64encode(png)
    assert map_proxy_response(output, [], accept="image/png").body == base64.b64encode(png)


def test_string_boolean_base64_flag_is_accepted() -> None:
    """``"true"``/``"false"`` strings are taken as the boolean flag, as API Gateway does."""
    output = {
        "headers": {"Content-Type": "image/png"},
        "body": base64.b64encode(b"\x00").decode(),
        "isBase64Encoded": "TRUE",
    }
    assert map_proxy_response(output, BINARY).body == b"\x00"


@pytest.mark.parametrize(
    "output",
    [
        "not a dict",
        {"statusCode": 200, "unexpected": 1},
        {"statusCode": "abc"},
        {"statusCode": 700},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "isBase64Encoded": "maybe"},
        {"statusCode": 200, "headers": ["a"]},
        {"statusCode": 200, "multiValueHeaders": {"X": "not-a-list"}},
        {"statusCode": 200, "headers": {"Content-Type": "image/png"}, "body": "%%%", "isBase64Encoded": True},
    ],
)
def test_malformed_proxy_responses_are_rejected(output: Any) -> None:
    """Anything API Gateway cannot map is a ProxyResponseError (the gateway answers 502)."""
    with pytest.raises(ProxyResponseError):
        map_proxy_response(output, BINARY)
