"""AWS's auth errors in each protocol's wire shape, read back with botocore's own parsers; service guessing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local_aws.auth.errors import MSG_INVALID_TOKEN, MSG_SIGNATURE, AuthError, AuthErrorKind
from local_aws.auth.services import Protocol, guess_service, protocol_for
from local_aws.auth.sigv4 import render_auth_error
from tests.unit.local_aws.auth.sigv4_helpers import parse_rendered

SKEW_MSG = "Signature expired: 20240501T114400Z is now earlier than 20240501T114500Z (20240501T120000Z - 15 min.)"
FACTS = {
    "request_time": "20240501T114400Z",
    "server_time": "2024-05-01T12:00:00Z",
    "x_amz_expires": "60",
    "expires": "2024-05-01T11:45:00Z",
    "region": "us-west-2",
    "expected_region": "us-east-1",
}
ERRORS: dict[AuthErrorKind, AuthError] = {
    "missing": AuthError("missing", "Missing Authentication Token"),
    "unknown_key": AuthError("unknown_key", MSG_INVALID_TOKEN, access_key_id="AKIAUNKNOWN000000000"),
    "bad_signature": AuthError("bad_signature", MSG_SIGNATURE, access_key_id="AKIAIOSFODNN7EXAMPLE"),
    "skewed": AuthError("skewed", SKEW_MSG, facts=FACTS),
    "expired": AuthError("expired", "Request has expired", presigned=True, facts=FACTS),
    "malformed": AuthError("malformed", "Authorization header requires 'Signature' parameter.", reason="incomplete"),
    "bad_token": AuthError("bad_token", MSG_INVALID_TOKEN),
    "wrong_region": AuthError(
        "wrong_region", "Credential should be scoped to a valid region, not 'us-west-2'. ", facts=FACTS
    ),
}
# kind -> (status, code) per protocol family.
JSON = {
    "missing": (400, "MissingAuthenticationTokenException"),
    "unknown_key": (400, "UnrecognizedClientException"),
    "bad_signature": (400, "InvalidSignatureException"),
    "skewed": (400, "InvalidSignatureException"),
    "expired": (400, "InvalidSignatureException"),
    "malformed": (400, "IncompleteSignatureException"),
    "bad_token": (400, "UnrecognizedClientException"),
    "wrong_region": (400, "InvalidSignatureException"),
}
QUERY = {
    "missing": (403, "MissingAuthenticationToken"),
    "unknown_key": (403, "InvalidClientTokenId"),
    "bad_signature": (403, "SignatureDoesNotMatch"),
    "skewed": (403, "SignatureDoesNotMatch"),
    "expired": (400, "RequestExpired"),
    "malformed": (400, "IncompleteSignature"),
    "bad_token": (403, "InvalidClientTokenId"),
    "wrong_region": (403, "SignatureDoesNotMatch"),
}
S3 = {
    "missing": (403, "AccessDenied", "Access Denied"),
    "unknown_key": (403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."),
    "bad_signature": (
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check your key and signing "
        "method.",
    ),
    "skewed": (
        403,
        "RequestTimeTooSkewed",
        "The difference between the request time and the current time is too large.",
    ),
    "expired": (403, "AccessDenied", "Request has expired"),
    "malformed": (
        400,
        "AuthorizationHeaderMalformed",
        "The authorization header is malformed; the authorization header requires three components: Credential, "
        "SignedHeaders, and Signature.",
    ),
    "bad_token": (400, "InvalidToken", "The provided token is malformed or otherwise invalid."),
    "wrong_region": (
        400,
        "AuthorizationQueryParametersError",
        "Error parsing the X-Amz-Credential parameter; the region 'us-west-2' is wrong; expecting 'us-east-1'",
    ),
}


def _error(kind: AuthErrorKind, **changes: Any) -> AuthError:
    base = ERRORS[kind]
    return AuthError(
        base.kind,
        base.message,
        reason=changes.get("reason", base.reason),
        access_key_id=base.access_key_id,
        presigned=changes.get("presigned", base.presigned),
        facts=base.facts,
    )


@pytest.mark.parametrize("kind", list(ERRORS))
def test_json_protocol_shape(kind: AuthErrorKind) -> None:
    rendered = render_auth_error(ERRORS[kind], "sagemaker", request_id="rid-1")
    status, headers, body = rendered
    parsed = parse_rendered(rendered, "json")
    assert (status, parsed["Error"]["Code"]) == JSON[kind]
    expected_message = "Missing Authentication Token" if kind == "missing" else ERRORS[kind].message
    assert parsed["Error"]["Message"] == expected_message
    assert json.loads(body) == {"__type": JSON[kind][1], "message": expected_message}
    assert ("Content-Type", "application/x-amz-json-1.1") in headers
    assert parsed["ResponseMetadata"]["RequestId"] == "rid-1"


@pytest.mark.parametrize("kind", list(ERRORS))
def test_query_protocol_shape(kind: AuthErrorKind) -> None:
    status, headers, body = rendered = render_auth_error(ERRORS[kind], "sts", request_id="rid-2")
    parsed = parse_rendered(rendered, "query")
    assert (status, parsed["Error"]["Code"]) == QUERY[kind]
    assert parsed["Error"]["Type"] == "Sender"
    expected_message = "Request is missing Authentication Token" if kind == "missing" else ERRORS[kind].message
    assert parsed["Error"]["Message"] == expected_message
    assert body.startswith(b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n  <Error>\n')
    assert b"<RequestId>rid-2</RequestId>" in body and ("Content-Type", "text/xml") in headers


@pytest.mark.parametrize("kind", list(ERRORS))
def test_s3_shape(kind: AuthErrorKind) -> None:
    error = _error(kind, presigned=True) if kind == "wrong_region" else ERRORS[kind]
    status, headers, body = rendered = render_auth_error(error, "s3", request_id="rid-3")
    parsed = parse_rendered(rendered, "rest-xml")
    assert (status, parsed["Error"]["Code"], parsed["Error"]["Message"]) == S3[kind]
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>')
    assert ("x-amz-request-id", "rid-3") in headers and b"<HostId>" in body


def test_s3_elements_clients_read() -> None:
    parsed = parse_rendered(render_auth_error(ERRORS["unknown_key"], "s3"), "rest-xml")
    assert parsed["Error"]["AWSAccessKeyId"] == "AKIAUNKNOWN000000000"
    parsed = parse_rendered(render_auth_error(ERRORS["skewed"], "s3"), "rest-xml")
    assert (parsed["Error"]["RequestTime"], parsed["Error"]["ServerTime"]) == (
        "20240501T114400Z",
        "2024-05-01T12:00:00Z",
    )
    parsed = parse_rendered(render_auth_error(_error("wrong_region", presigned=False), "s3"), "rest-xml")
    assert parsed["Error"]["Message"] == (
        "The authorization header is malformed; the region 'us-west-2' is wrong; expecting 'us-east-1'"
    )
    parsed = parse_rendered(render_auth_error(_error("malformed", presigned=True), "s3"), "rest-xml")
    assert parsed["Error"]["Code"] == "AuthorizationQueryParametersError"
    parsed = parse_rendered(render_auth_error(_error("malformed", reason="bad_date"), "s3"), "rest-xml")
    assert (parsed["status"], parsed["Error"]["Code"]) == (403, "AccessDenied")


@pytest.mark.parametrize("kind", list(ERRORS))
def test_execute_api_shape(kind: AuthErrorKind) -> None:
    status, headers, body = rendered = render_auth_error(ERRORS[kind], "execute-api")
    assert status == 403 and ("Content-Type", "application/json") in headers
    parsed = parse_rendered(rendered, "rest-json")
    assert parsed["Error"]["Code"] == JSON[kind][1]  # read from x-amzn-ErrorType
    expected_message = "Missing Authentication Token" if kind == "missing" else ERRORS[kind].message
    assert json.loads(body) == {"message": expected_message}


def test_rest_json_and_query_compatible_json() -> None:
    rendered = render_auth_error(ERRORS["unknown_key"], "sagemaker-runtime")
    parsed = parse_rendered(rendered, "rest-json")
    assert (parsed["status"], parsed["Error"]["Code"]) == (403, "UnrecognizedClientException")
    # CloudWatch speaks JSON 1.0 in botocore 1.4x but kept its query error codes (awsQueryCompatible).
    _, headers, _ = rendered = render_auth_error(ERRORS["unknown_key"], "monitoring")
    assert ("Content-Type", "application/x-amz-json-1.0") in headers
    assert parse_rendered(rendered, "json")["Error"]["Code"] == "InvalidClientTokenId"


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("sagemaker", Protocol("json", "1.1")),
        ("states", Protocol("json", "1.0")),
        ("logs", Protocol("json", "1.1")),
        ("application-autoscaling", Protocol("json", "1.1")),
        ("events", Protocol("json", "1.1")),
        ("monitoring", Protocol("json", "1.0", query_compatible=True)),
        ("sagemaker-runtime", Protocol("rest-json")),
        ("iam", Protocol("query", xml_namespace="https://iam.amazonaws.com/doc/2010-05-08/")),
        ("cloudformation", Protocol("query", xml_namespace="http://cloudformation.amazonaws.com/doc/2010-05-15/")),
        ("sns", Protocol("query", xml_namespace="http://sns.amazonaws.com/doc/2010-03-31/")),
        ("s3", Protocol("s3")),
        ("execute-api", Protocol("execute-api")),
        ("no-such-service", Protocol("json")),
    ],
)
def test_protocol_comes_from_botocores_model(service: str, expected: Protocol) -> None:
    assert protocol_for(service) == expected


def _environ(**kw: str) -> dict[str, str]:
    return {"REQUEST_METHOD": kw.pop("method", "POST"), "PATH_INFO": kw.pop("path", "/"), **kw}


@pytest.mark.parametrize(
    ("environ", "body", "expected"),
    [
        (
            _environ(HTTP_AUTHORIZATION="AWS4-HMAC-SHA256 Credential=AK/20240501/us-east-1/logs/aws4_request"),
            b"",
            "logs",
        ),
        (
            # Read exactly as the verifier reads the header (first Credential component, spaces around '='), so the
            # edge's guess of whether to stream the body never disagrees with the scope verified.
            _environ(HTTP_AUTHORIZATION="AWS4-HMAC-SHA256 SignedHeaders=host, Credential = AK/1/us-east-1/sts/x, C=y"),
            b"",
            "sts",
        ),
        (_environ(method="GET", HTTP_AUTHORIZATION="Bearer Credential=AK/1/us-east-1/logs/aws4_request"), b"", "s3"),
        (
            _environ(method="GET", QUERY_STRING="X-Amz-Credential=AK%2F20240501%2Fus-east-1%2Fs3%2Faws4_request"),
            b"",
            "s3",
        ),
        (_environ(HTTP_X_AMZ_TARGET="SageMaker.CreateTrainingJob"), b"{}", "sagemaker"),
        (_environ(HTTP_X_AMZ_TARGET="AWSStepFunctions.StartExecution"), b"{}", "states"),
        (_environ(HTTP_X_AMZ_TARGET="Logs_20140328.GetLogEvents"), b"{}", "logs"),
        (
            _environ(HTTP_X_AMZ_TARGET="AnyScaleFrontendService.RegisterScalableTarget"),
            b"{}",
            "application-autoscaling",
        ),
        (_environ(HTTP_X_AMZ_TARGET="AWSEvents.PutEvents"), b"{}", "events"),
        (_environ(HTTP_X_AMZ_TARGET="GraniteServiceVersion20100801.PutMetricData"), b"{}", "monitoring"),
        (
            _environ(CONTENT_TYPE="application/x-www-form-urlencoded; charset=utf-8"),
            b"Action=GetCallerIdentity&Version=2011-06-15",
            "sts",
        ),
        (
            _environ(CONTENT_TYPE="application/x-www-form-urlencoded"),
            b"Action=CreateStack&Version=2010-05-15",
            "cloudformation",
        ),
        (_environ(CONTENT_TYPE="application/x-www-form-urlencoded"), b"Action=ListUsers", "iam"),
        (_environ(CONTENT_TYPE="application/x-www-form-urlencoded"), b"Action=Publish", "sns"),
        (_environ(method="GET", QUERY_STRING="Action=GetCallerIdentity&Version=2011-06-15"), b"", "sts"),
        (_environ(path="/endpoints/dogbreed/invocations"), b"\x89PNG", "sagemaker-runtime"),
        (_environ(method="GET", path="/bucket/key.txt"), b"", "s3"),
        (_environ(method="PUT", path="/bucket/key.txt"), b"data", "s3"),
    ],
)
def test_guess_service(environ: dict[str, str], body: bytes, expected: str) -> None:
    assert guess_service(environ, body) == expected
