"""End to end: real boto3 clients sign, a WSGI middleware verifies, and botocore reads AWS's errors back.

The clients are routed in-process by ``tests/unit/local_aws/wsgi_boto3.py`` (sockets are disabled under tests/unit),
so what the middleware sees is exactly the request botocore would have sent.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from werkzeug.test import Client

from local_aws.auth.sigv4 import AuthError, guess_service, incoming_from_environ, render_auth_error, verify
from tests.unit.local_aws.auth.sigv4_helpers import CREDS, REGION, STORE
from tests.unit.local_aws.wsgi_boto3 import ENDPOINT, route_to_app

KEY = "runs/a b/ü+x.txt"
StartResponse = Callable[..., Any]


class AuthMiddleware:
    """What the edge does in front of every service: verify, or answer with AWS's auth error."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        try:
            environ["local_aws.caller"] = verify(incoming_from_environ(environ, body), STORE, region=REGION)
        except AuthError as err:
            status, headers, payload = render_auth_error(err, guess_service(environ, body))
            start_response(f"{status} {HTTPStatus(status).phrase}", headers)
            return [payload]
        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


class Backend:
    """Just enough of each service for botocore to parse a success."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        caller = environ["local_aws.caller"]
        if caller.service == "sts":
            body = (
                '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
                f"<Arn>{caller.identity.principal_arn}</Arn><UserId>{caller.access_key_id}</UserId>"
                f"<Account>{caller.identity.account_id}</Account></GetCallerIdentityResult>"
                "<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
            ).encode()
            start_response("200 OK", [("Content-Type", "text/xml")])
            return [body]
        if caller.service in ("sagemaker", "states"):
            payload: dict[str, list[str]] = {
                "TrainingJobSummaries" if caller.service == "sagemaker" else "stateMachines": []
            }
            start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1")])
            return [json.dumps(payload).encode()]
        path = environ["REQUEST_URI"].split("?", 1)[0]
        if environ["REQUEST_METHOD"] == "PUT":
            self.objects[path] = environ["wsgi.input"].read()
            start_response("200 OK", [("ETag", '"1"')])
            return [b""]
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [self.objects[path]]


@pytest.fixture
def web() -> Client:
    return Client(AuthMiddleware(Backend()))


def make(service: str, web: Client, **overrides: Any) -> Any:
    config = Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"})
    if overrides.pop("unsigned", False):
        config = config.merge(Config(signature_version=UNSIGNED))
    kwargs: dict[str, Any] = {
        "endpoint_url": ENDPOINT,
        "region_name": REGION,
        "aws_access_key_id": CREDS.access_key_id,
        "aws_secret_access_key": CREDS.secret_access_key,
        "config": config,
        **overrides,
    }
    return route_to_app(boto3.client(service, **kwargs), web.application)


def test_boto3_clients_are_accepted(web: Client) -> None:
    assert make("sts", web).get_caller_identity()["Arn"] == CREDS.principal_arn
    assert make("sagemaker", web).list_training_jobs()["TrainingJobSummaries"] == []
    assert make("stepfunctions", web).list_state_machines()["stateMachines"] == []
    s3 = make("s3", web)
    s3.put_object(Bucket="models", Key=KEY, Body=b"\x00weights\xff")
    assert s3.get_object(Bucket="models", Key=KEY)["Body"].read() == b"\x00weights\xff"


def test_presigned_url_is_accepted(web: Client) -> None:
    # boto3 presigns S3 URLs with SigV2 unless told s3v4; the local AWS accepts SigV4 only, like newer S3 buckets.
    sigv2 = urlsplit(make("s3", web).generate_presigned_url("get_object", Params={"Bucket": "models", "Key": KEY}))
    refused = web.get(f"{sigv2.path}?{sigv2.query}", base_url=f"{sigv2.scheme}://{sigv2.netloc}")
    assert refused.status_code == 400 and b"Please use AWS4-HMAC-SHA256." in refused.get_data()
    s3 = make("s3", web, config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    s3.put_object(Bucket="models", Key=KEY, Body=b"tarball")
    url = urlsplit(s3.generate_presigned_url("get_object", Params={"Bucket": "models", "Key": KEY}, ExpiresIn=300))
    response = web.get(f"{url.path}?{url.query}", base_url=f"{url.scheme}://{url.netloc}")
    assert (response.status_code, response.get_data()) == (200, b"tarball")
    tampered = web.get(f"{url.path}x?{url.query}", base_url=f"{url.scheme}://{url.netloc}")
    assert tampered.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in tampered.get_data()


def _error(call: Callable[[], Any]) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as info:
        call()
    err = info.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"], err["Error"]["Message"]


def test_wrong_secret_is_refused_in_each_protocol(web: Client) -> None:
    bad = {"aws_secret_access_key": "x" * 40}
    assert _error(make("sts", web, **bad).get_caller_identity)[:2] == (403, "SignatureDoesNotMatch")
    assert _error(make("sagemaker", web, **bad).list_training_jobs)[:2] == (400, "InvalidSignatureException")
    s3 = make("s3", web, **bad)
    assert _error(lambda: s3.get_object(Bucket="models", Key=KEY))[:2] == (403, "SignatureDoesNotMatch")


def test_unknown_key_is_refused_in_each_protocol(web: Client) -> None:
    unknown = {"aws_access_key_id": "AKIAUNKNOWN000000000"}
    token_msg = "The security token included in the request is invalid."
    assert _error(make("sts", web, **unknown).get_caller_identity) == (403, "InvalidClientTokenId", token_msg)
    assert _error(make("stepfunctions", web, **unknown).list_state_machines) == (
        400,
        "UnrecognizedClientException",
        token_msg,
    )
    s3 = make("s3", web, **unknown)
    assert _error(lambda: s3.put_object(Bucket="models", Key="k", Body=b"x"))[:2] == (403, "InvalidAccessKeyId")


def test_session_token_from_a_real_aws_session_is_refused(web: Client) -> None:
    # What a stale AWS_SESSION_TOKEN in the shell does to the local key (why env_exports unsets it).
    client = make("sts", web, aws_session_token="FwoGZXIvYXdzEXAMPLE")
    assert _error(client.get_caller_identity)[:2] == (403, "InvalidClientTokenId")


def test_wrong_region_is_refused(web: Client) -> None:
    status, code, message = _error(make("sagemaker", web, region_name="eu-west-1").list_training_jobs)
    assert (status, code, message) == (
        400,
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'eu-west-1'. ",
    )


def test_unsigned_requests_get_the_services_missing_auth_error(web: Client) -> None:
    assert _error(make("sts", web, unsigned=True).get_caller_identity) == (
        403,
        "MissingAuthenticationToken",
        "Request is missing Authentication Token",
    )
    assert _error(make("sagemaker", web, unsigned=True).list_training_jobs) == (
        400,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )
    s3 = make("s3", web, unsigned=True)
    assert _error(lambda: s3.get_object(Bucket="models", Key=KEY)) == (403, "AccessDenied", "Access Denied")
