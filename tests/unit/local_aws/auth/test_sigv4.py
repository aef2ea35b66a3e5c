"""SigV4 verification of requests signed by botocore itself: what passes, and one failure per check, per protocol."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import timedelta
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.config import Config
from botocore.utils import percent_encode

from local_aws.auth.credentials import StaticCredentialStore
from local_aws.auth.request import IncomingRequest
from local_aws.auth.sigv4 import AuthError, Caller, incoming_from_environ, render_auth_error, verify
from tests.unit.local_aws.auth.sigv4_helpers import CREDS, NOW, REGION, STORE, TEMP, parse_rendered, sign_request

EDGE = "http://127.0.0.1:4566"
SAGEMAKER_HEADERS = {"X-Amz-Target": "SageMaker.ListTrainingJobs", "Content-Type": "application/x-amz-json-1.1"}
STS_FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
STS_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
KEY = "a b/ü+x.txt"  # space, slash, non-ASCII and '+': every S3 path-encoding trap at once


def check(request: IncomingRequest, **kwargs: Any) -> Caller:
    return verify(request, STORE, region=REGION, now=kwargs.pop("now", NOW), **kwargs)


def refused(request: IncomingRequest, **kwargs: Any) -> AuthError:
    with pytest.raises(AuthError) as info:
        check(request, **kwargs)
    return info.value


def with_headers(request: IncomingRequest, drop: tuple[str, ...] = (), **changes: str) -> IncomingRequest:
    headers = {k: v for k, v in dict(request.headers).items() if k.lower() not in {d.lower() for d in drop}}
    for name, value in changes.items():
        headers = {k: v for k, v in headers.items() if k.lower() != name.replace("_", "-").lower()}
        headers[name.replace("_", "-")] = value
    return dataclasses.replace(request, headers=headers)


def sagemaker(body: bytes = b"{}", **kwargs: Any) -> IncomingRequest:
    return sign_request("POST", EDGE + "/", "sagemaker", headers=SAGEMAKER_HEADERS, body=body, **kwargs)


def sts(**kwargs: Any) -> IncomingRequest:
    return sign_request("POST", EDGE + "/", "sts", headers=STS_FORM, body=STS_BODY, **kwargs)


def s3_put(body: bytes = b"weights", **kwargs: Any) -> IncomingRequest:
    return sign_request("PUT", f"{EDGE}/models/model.tar.gz", "s3", body=body, signer=S3SigV4Auth, **kwargs)


def s3_presigned(when_delta: timedelta = timedelta(0), expires: int = 3600, **kwargs: Any) -> IncomingRequest:
    url = f"{EDGE}/models/{percent_encode(KEY, safe='/~')}?versionId=v%201"
    return sign_request("GET", url, "s3", signer=S3SigV4QueryAuth, when=NOW + when_delta, expires=expires, **kwargs)


class _NoHost(SigV4Auth):
    """A (broken) client that leaves host out of SignedHeaders."""

    def headers_to_sign(self, request: Any) -> Any:
        headers = super().headers_to_sign(request)
        del headers["host"]
        return headers


class _NoHostS3(S3SigV4Auth):
    def headers_to_sign(self, request: Any) -> Any:
        headers = super().headers_to_sign(request)
        del headers["host"]
        return headers


# ------------------------------------------------------------------------------------------------------------ pass
def test_sagemaker_json_post_with_target_verifies() -> None:
    request = sagemaker(b'{"MaxResults": 5}')
    caller = check(request)
    assert (caller.service, caller.region, caller.access_key_id) == ("sagemaker", REGION, CREDS.access_key_id)
    assert caller.identity.principal_arn == CREDS.principal_arn
    assert "x-amz-target" in caller.signed_headers and "content-type" in caller.signed_headers
    assert caller.payload_hash == hashlib.sha256(b'{"MaxResults": 5}').hexdigest()
    assert not caller.presigned


def test_sts_query_post_verifies() -> None:
    assert check(sts()).service == "sts"


def test_stepfunctions_json10_verifies() -> None:
    headers = {"X-Amz-Target": "AWSStepFunctions.ListStateMachines", "Content-Type": "application/x-amz-json-1.0"}
    request = sign_request("POST", EDGE + "/", "states", headers=headers, body=b"{}")
    assert check(request).service == "states"


def test_s3_put_with_body_uses_the_content_sha256_header() -> None:
    request = s3_put(b"\x00model bytes\xff")
    assert request.header("x-amz-content-sha256") == hashlib.sha256(b"\x00model bytes\xff").hexdigest()
    caller = check(request)
    assert caller.service == "s3" and caller.payload_hash == request.header("x-amz-content-sha256")


def test_s3_get_key_needing_percent_encoding_verifies() -> None:
    request = sign_request("GET", f"{EDGE}/models/{percent_encode(KEY, safe='/~')}", "s3", signer=S3SigV4Auth)
    assert request.raw_path == "/models/a%20b/%C3%BC%2Bx.txt"  # S3 signs the path as sent, not encoded again
    assert check(request).service == "s3"


def test_s3_unsigned_payload_accepts_any_body() -> None:
    config = Config(s3={"payload_signing_enabled": False})
    request = s3_put(b"original", context={"client_config": config})
    assert request.header("x-amz-content-sha256") == "UNSIGNED-PAYLOAD"
    assert check(dataclasses.replace(request, body=b"whatever")).payload_hash == "UNSIGNED-PAYLOAD"


def test_s3_streaming_trailer_payload_is_passed_on() -> None:
    context = {"checksum": {"request_algorithm": {"in": "trailer", "name": "x-amz-checksum-crc32"}}}
    request = s3_put(b"5\r\nhello\r\n0\r\n\r\n", context=context)
    assert check(request).payload_hash == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


def test_s3_streamed_body_left_unread_is_verified_without_it() -> None:
    request = dataclasses.replace(s3_put(b"big"), body=None)
    assert check(request).payload_hash == hashlib.sha256(b"big").hexdigest()  # the S3 layer checks it while reading


def test_execute_api_post_with_binary_body_and_query_verifies() -> None:
    url = "http://127.0.0.1:3000/prod/predict?top_k=3&label=a%2Fb"
    request = sign_request("POST", url, "execute-api", headers={"Content-Type": "image/png"}, body=bytes(range(256)))
    assert check(request, expected_service="execute-api").service == "execute-api"


def test_s3_presigned_get_verifies_within_expiry() -> None:
    caller = check(s3_presigned(when_delta=-timedelta(minutes=50)))
    assert caller.presigned and caller.payload_hash == "UNSIGNED-PAYLOAD"


def test_sts_presigned_get_verifies() -> None:
    url = f"{EDGE}/?Action=GetCallerIdentity&Version=2011-06-15"
    request = sign_request("GET", url, "sts", signer=SigV4QueryAuth, expires=900)
    assert check(request).presigned


def test_query_string_is_canonicalised_like_aws() -> None:
    # A client that percent-encodes an unreserved character ('~' as %7E) still verifies: the query is decoded and
    # re-encoded, as AWS does, before it is compared.
    request = sign_request("GET", f"{EDGE}/models?prefix=a~b&list-type=2", "s3", signer=S3SigV4Auth)
    assert check(dataclasses.replace(request, raw_query=request.raw_query.replace("~", "%7E"))).service == "s3"


def test_date_header_instead_of_x_amz_date() -> None:
    headers = {**SAGEMAKER_HEADERS, "Date": "placeholder"}  # botocore signs with Date when one is there
    request = sign_request("POST", EDGE + "/", "sagemaker", headers=headers, body=b"{}")
    assert request.header("x-amz-date") is None and request.header("date") == "Wed, 01 May 2024 12:00:00 -0000"
    assert check(request).timestamp == "20240501T120000Z"


def test_temporary_credentials_with_session_token_verify() -> None:
    request = sagemaker(key=TEMP.access_key_id, secret=TEMP.secret_access_key, token=TEMP.session_token)
    assert "x-amz-security-token" in check(request).signed_headers


def test_unsigned_extra_header_is_fine() -> None:
    assert check(with_headers(sagemaker(), X_Forwarded_For="10.0.0.1"))
    assert check(with_headers(s3_put(), Expect="100-continue", X_Custom="1"))


def test_skew_of_14_minutes_is_accepted() -> None:
    assert check(sagemaker(when=NOW - timedelta(minutes=14)))
    assert check(sagemaker(when=NOW + timedelta(minutes=14)))


# ------------------------------------------------------------------------------------------------------------ fail
def test_tampered_body_fails_for_json_and_execute_api() -> None:
    err = refused(dataclasses.replace(sagemaker(b'{"MaxResults": 5}'), body=b'{"MaxResults": 50}'))
    assert err.kind == "bad_signature" and "canonical_request" in err.facts
    parsed = parse_rendered(render_auth_error(err, "sagemaker"), "json")
    assert (parsed["status"], parsed["Error"]["Code"]) == (400, "InvalidSignatureException")
    url = "http://127.0.0.1:3000/prod/predict"
    request = sign_request("POST", url, "execute-api", headers={"Content-Type": "image/png"}, body=b"\x89PNG")
    status, headers, body = render_auth_error(refused(dataclasses.replace(request, body=b"\x89PNH")), "execute-api")
    assert status == 403 and ("x-amzn-ErrorType", "InvalidSignatureException") in headers
    assert b"The Canonical String for this request should have been\\n'POST\\n/prod/predict\\n" in body


def test_tampered_s3_body_fails_the_content_sha256_check() -> None:
    err = refused(dataclasses.replace(s3_put(b"weights"), body=b"weightz"))
    assert (err.kind, err.reason) == ("bad_signature", "content_sha256_mismatch")
    parsed = parse_rendered(render_auth_error(err, "s3"), "rest-xml")
    assert (parsed["status"], parsed["Error"]["Code"]) == (400, "XAmzContentSHA256Mismatch")


def test_tampered_signed_header_fails() -> None:
    err = refused(with_headers(sagemaker(), X_Amz_Target="SageMaker.DeleteEndpoint"))
    assert err.kind == "bad_signature"
    assert "x-amz-target:SageMaker.DeleteEndpoint" in err.facts["canonical_request"]


def test_wrong_secret_fails() -> None:
    err = refused(sts(secret="x" * 40))
    assert err.kind == "bad_signature" and err.access_key_id == CREDS.access_key_id
    parsed = parse_rendered(render_auth_error(err, "sts"), "query")
    assert (parsed["status"], parsed["Error"]["Code"], parsed["Error"]["Type"]) == (
        403,
        "SignatureDoesNotMatch",
        "Sender",
    )


def test_unknown_key_fails() -> None:
    err = refused(sts(key="AKIAUNKNOWN000000000"))
    assert err.kind == "unknown_key"
    parsed = parse_rendered(render_auth_error(err, "sts"), "query")
    assert (parsed["status"], parsed["Error"]["Code"]) == (403, "InvalidClientTokenId")
    assert parsed["Error"]["Message"] == "The security token included in the request is invalid."


def test_wrong_region_fails() -> None:
    err = refused(sign_request("GET", f"{EDGE}/models/x", "s3", signer=S3SigV4Auth, region="us-west-2"))
    assert err.kind == "wrong_region" and err.facts["region"] == "us-west-2"
    parsed = parse_rendered(render_auth_error(err, "s3"), "rest-xml")
    assert (parsed["status"], parsed["Error"]["Code"]) == (400, "AuthorizationHeaderMalformed")
    assert parsed["Error"]["Message"] == (
        "The authorization header is malformed; the region 'us-west-2' is wrong; expecting 'us-east-1'"
    )
    assert parsed["Error"]["Region"] == "us-east-1"  # botocore's S3 region redirector reads this
    err = refused(sagemaker(region="eu-west-1"))
    parsed = parse_rendered(render_auth_error(err, "sagemaker"), "json")
    assert parsed["Error"] == {
        "Code": "InvalidSignatureException",
        "Message": "Credential should be scoped to a valid region, not 'eu-west-1'. ",
    }


def test_presigned_wrong_region_is_a_query_parameters_error() -> None:
    err = refused(s3_presigned(region="eu-central-1"))
    parsed = parse_rendered(render_auth_error(err, "s3"), "rest-xml")
    assert parsed["Error"]["Code"] == "AuthorizationQueryParametersError"
    assert parsed["Error"]["Message"].startswith("Error parsing the X-Amz-Credential parameter; the region")


@pytest.mark.parametrize("minutes", [16, -16])
def test_date_skew_of_16_minutes_fails(minutes: int) -> None:
    err = refused(sts(when=NOW - timedelta(minutes=minutes)))
    assert err.kind == "skewed"
    if minutes > 0:
        assert err.message == (
            "Signature expired: 20240501T114400Z is now earlier than 20240501T114500Z (20240501T120000Z - 15 min.)"
        )
    else:
        assert err.message == (
            "Signature not yet current: 20240501T121600Z is still later than 20240501T121500Z "
            "(20240501T120000Z + 15 min.)"
        )
    parsed = parse_rendered(render_auth_error(err, "sts"), "query")
    assert (parsed["status"], parsed["Error"]["Code"]) == (403, "SignatureDoesNotMatch")
    parsed = parse_rendered(render_auth_error(refused(s3_put(when=NOW - timedelta(minutes=minutes))), "s3"), "rest-xml")
    assert (parsed["status"], parsed["Error"]["Code"]) == (403, "RequestTimeTooSkewed")
    assert parsed["Error"]["MaxAllowedSkewMilliseconds"] == "900000"
    assert parsed["Error"]["ServerTime"] == "2024-05-01T12:00:00Z"


def test_expired_presigned_url_fails() -> None:
    err = refused(s3_presigned(when_delta=-timedelta(minutes=61), expires=3600))
    assert err.kind == "expired"
    parsed = parse_rendered(render_auth_error(err, "s3"), "rest-xml")
    assert (parsed["status"], parsed["Error"]["Code"], parsed["Error"]["Message"]) == (
        403,
        "AccessDenied",
        "Request has expired",
    )
    assert parsed["Error"]["X-Amz-Expires"] == "3600" and parsed["Error"]["Expires"] == "2024-05-01T11:59:00Z"


def test_presigned_url_from_the_future_fails() -> None:
    assert refused(s3_presigned(when_delta=timedelta(minutes=20))).kind == "skewed"


def test_missing_host_in_signed_headers_fails() -> None:
    err = refused(sign_request("POST", EDGE + "/", "sagemaker", headers=SAGEMAKER_HEADERS, body=b"{}", signer=_NoHost))
    assert (err.kind, err.reason) == ("malformed", "headers_not_signed")
    parsed = parse_rendered(render_auth_error(err, "sagemaker"), "json")
    assert parsed["Error"] == {
        "Code": "IncompleteSignatureException",
        "Message": "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    }
    err = refused(sign_request("GET", f"{EDGE}/models/x", "s3", signer=_NoHostS3))
    parsed = parse_rendered(render_auth_error(err, "s3"), "rest-xml")
    assert (parsed["status"], parsed["Error"]["Code"], parsed["Error"]["HeadersNotSigned"]) == (
        403,
        "AccessDenied",
        "host",
    )


def test_s3_refuses_an_unsigned_x_amz_header() -> None:
    err = refused(with_headers(s3_put(), X_Amz_Acl="public-read"))
    assert err.facts["headers_not_signed"] == "x-amz-acl"
    parsed = parse_rendered(render_auth_error(err, "s3"), "rest-xml")
    assert parsed["Error"]["Message"] == "There were headers present in the request which were not signed"


def test_s3_header_auth_requires_content_sha256() -> None:
    err = refused(with_headers(s3_put(), drop=("x-amz-content-sha256",)))
    parsed = parse_rendered(render_auth_error(err, "s3"), "rest-xml")
    assert (parsed["status"], parsed["Error"]["Code"]) == (400, "InvalidRequest")
    assert parsed["Error"]["Message"] == "Missing required header for this request: x-amz-content-sha256"


def test_session_token_mismatch_fails() -> None:
    wrong = sagemaker(key=TEMP.access_key_id, secret=TEMP.secret_access_key, token="someone-elses-token")
    err = refused(wrong)
    assert err.kind == "bad_token"
    parsed = parse_rendered(render_auth_error(err, "sts"), "query")
    assert (parsed["status"], parsed["Error"]["Code"]) == (403, "InvalidClientTokenId")
    parsed = parse_rendered(render_auth_error(err, "s3"), "rest-xml")
    assert (parsed["status"], parsed["Error"]["Code"]) == (400, "InvalidToken")
    # A temporary key without its token, and a long-term key with one, are refused the same way.
    assert refused(sagemaker(key=TEMP.access_key_id, secret=TEMP.secret_access_key)).kind == "bad_token"
    assert refused(sagemaker(token="stray-token")).kind == "bad_token"


def test_unsigned_security_token_fails() -> None:
    request = sagemaker(key=TEMP.access_key_id, secret=TEMP.secret_access_key)
    assert refused(with_headers(request, X_Amz_Security_Token=str(TEMP.session_token))).kind == "bad_token"


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (
            "Bearer eyJhbGciOi",
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' "
            "parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=Bearer eyJhbGciOi",
        ),
        (
            "AWS4-HMAC-SHA256 Credential",
            "'Credential' not a valid key=value pair (missing equal-sign) in Authorization header: "
            "'AWS4-HMAC-SHA256 Credential'.",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240501/us-east-1/sagemaker/aws4_request",
            "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
            "parameter. Authorization=AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240501/us-east-1/sagemaker"
            "/aws4_request",
        ),
    ],
)
def test_garbled_authorization_fails(authorization: str, message: str) -> None:
    err = refused(with_headers(sagemaker(), Authorization=authorization))
    assert (err.kind, err.message) == ("malformed", message)
    parsed = parse_rendered(render_auth_error(err, "sagemaker"), "json")
    assert (parsed["status"], parsed["Error"]["Code"]) == (400, "IncompleteSignatureException")
    status, headers, _ = render_auth_error(err, "execute-api")
    assert status == 403 and ("x-amzn-ErrorType", "IncompleteSignatureException") in headers
    parsed = parse_rendered(render_auth_error(err, "s3"), "rest-xml")
    assert (parsed["status"], parsed["Error"]["Code"]) == (400, "AuthorizationHeaderMalformed")


def test_garbled_credential_scope_fails() -> None:
    auth = str(sagemaker().header("authorization")).replace("/aws4_request", "")
    err = refused(with_headers(sagemaker(), Authorization=auth))
    assert (err.kind, err.reason) == ("malformed", "bad_credential")


def test_scope_date_must_match_x_amz_date() -> None:
    err = refused(with_headers(sagemaker(), X_Amz_Date="20240502T120000Z"))
    assert (err.kind, err.reason) == ("malformed", "date_mismatch")
    assert "'20240501' != '20240502'" in err.message


def test_sigv2_on_s3_is_unsupported() -> None:
    err = refused(with_headers(s3_put(), Authorization="AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg="))
    parsed = parse_rendered(render_auth_error(err, "s3"), "rest-xml")
    assert (parsed["Error"]["Code"], parsed["Error"]["Message"]) == (
        "InvalidRequest",
        "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
    )


def test_no_authentication_at_all() -> None:
    err = refused(IncomingRequest("GET", "/models/x", "", {"Host": "127.0.0.1:4566"}))
    assert err.kind == "missing"


def test_partial_or_invalid_presigned_parameters_fail() -> None:
    request = s3_presigned()
    no_expires = "&".join(p for p in request.raw_query.split("&") if not p.startswith("X-Amz-Expires="))
    err = refused(dataclasses.replace(request, raw_query=no_expires))
    parsed = parse_rendered(render_auth_error(err, "s3"), "rest-xml")
    assert parsed["Error"]["Code"] == "AuthorizationQueryParametersError"
    assert parsed["Error"]["Message"].startswith("Query-string authentication version 4 requires the X-Amz-Algorithm")
    err = refused(s3_presigned(expires=604_801))
    assert (err.reason, err.message) == (
        "bad_expires",
        "X-Amz-Expires must be less than a week (in seconds) that is 604800",
    )


def test_header_and_query_auth_together_fail() -> None:
    request = s3_presigned()
    err = refused(with_headers(request, Authorization=str(s3_put().header("authorization"))))
    assert err.reason == "mixed_auth"


def test_expected_service_is_enforced() -> None:
    err = refused(sagemaker(), expected_service="execute-api")
    assert (err.kind, err.reason, err.facts["service"]) == ("malformed", "wrong_service", "sagemaker")


def test_non_s3_request_needs_its_body() -> None:
    with pytest.raises(ValueError, match="body"):
        check(dataclasses.replace(sagemaker(), body=None))


def test_static_store_knows_only_its_keys() -> None:
    store = StaticCredentialStore(CREDS)
    assert store.lookup(CREDS.access_key_id) == CREDS.identity()
    assert store.lookup(TEMP.access_key_id) is None
    assert STORE.lookup(TEMP.access_key_id) == TEMP
    assert "secret" not in repr(CREDS.identity()).lower()


def test_incoming_from_environ_keeps_the_raw_path_and_query() -> None:
    environ = {
        "REQUEST_METHOD": "PUT",
        "REQUEST_URI": "/models/a%20b/%C3%BC%2Bx.txt?uploads=&x=%2F",
        "PATH_INFO": "/models/a b/\xc3\xbc+x.txt",  # decoded (latin-1, as WSGI does): useless for SigV4
        "QUERY_STRING": "uploads=&x=%2F",
        "HTTP_HOST": "127.0.0.1:4566",
        "HTTP_X_AMZ_CONTENT_SHA256": "UNSIGNED-PAYLOAD",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": "3",
    }
    request = incoming_from_environ(environ, b"abc")
    assert (request.method, request.raw_path, request.raw_query) == (
        "PUT",
        "/models/a%20b/%C3%BC%2Bx.txt",
        "uploads=&x=%2F",
    )
    assert request.header("Host") == "127.0.0.1:4566" and request.header("X-Amz-Content-Sha256") == "UNSIGNED-PAYLOAD"
    assert (request.header("content-type"), request.header("Content-Length")) == ("text/plain", "3")


def test_incoming_from_environ_absolute_form_and_no_raw_uri() -> None:
    absolute = incoming_from_environ({"REQUEST_URI": "http://127.0.0.1:4566/b/k?x=1", "HTTP_HOST": "h"}, b"")
    assert (absolute.raw_path, absolute.raw_query) == ("/b/k", "x=1")
    rebuilt = incoming_from_environ({"PATH_INFO": "/b/a b", "QUERY_STRING": "q=%20"}, b"")
    assert (rebuilt.method, rebuilt.raw_path, rebuilt.raw_query) == ("GET", "/b/a%20b", "q=%20")


def test_repeated_headers_join_like_sigv4() -> None:
    request = IncomingRequest("GET", "/", "", [("X-Meta", "a"), ("x-meta", "b"), ("Host", "h")])
    assert request.header("X-META") == "a,b" and sorted(request.header_names()) == ["host", "x-meta"]
