"""Helpers for the auth tests: a known key pair, requests signed by botocore itself, errors parsed by botocore."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HeadersDict
from botocore.credentials import Credentials
from botocore.parsers import create_parser

from local_aws.auth.credentials import ChainCredentialStore, Identity, IssuedCredentials, StaticCredentialStore
from local_aws.auth.request import IncomingRequest

REGION = "us-east-1"
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
# AWS's documentation example pair (docs.aws.amazon.com/IAM/latest/UserGuide/security-creds.html).
CREDS = IssuedCredentials(
    access_key_id="AKIAIOSFODNN7EXAMPLE",
    secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    account_id="123456789012",
    principal_arn="arn:aws:iam::123456789012:user/local-operator",
    user_name="local-operator",
)
TEMP = Identity(
    access_key_id="ASIAIOSFODNN7EXAMPLE",
    secret_access_key="je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    account_id="123456789012",
    principal_arn="arn:aws:sts::123456789012:assumed-role/trainer/session",
    session_token="FwoGZXIvYXdzEXAMPLETOKEN",
)
STORE = ChainCredentialStore(StaticCredentialStore(CREDS), StaticCredentialStore(TEMP))


def to_incoming(prepared: Any) -> IncomingRequest:
    """What a server receives for a botocore ``AWSPreparedRequest``: raw path and query, Host as http.client sends."""
    parts = urlsplit(prepared.url)
    headers = dict(prepared.headers)
    headers["Host"] = parts.netloc  # http.client: host[:port] of the URL, as botocore signed it
    headers["User-Agent"] = "Boto3/1.0 test"  # never signed (botocore's blacklist), always sent
    body = prepared.body or b""
    return IncomingRequest(
        prepared.method, parts.path, parts.query, headers, body.encode() if isinstance(body, str) else body
    )


def sign_request(
    method: str,
    url: str,
    service: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | str = b"",
    signer: type = SigV4Auth,
    key: str = CREDS.access_key_id,
    secret: str = CREDS.secret_access_key,
    token: str | None = None,
    region: str = REGION,
    when: datetime = NOW,
    context: Mapping[str, Any] | None = None,
    **signer_kwargs: Any,
) -> IncomingRequest:
    """Sign with a botocore signer class at time ``when`` and return what the server would receive."""
    request = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body)
    request.context.update(context or {})
    with mock.patch("botocore.auth.get_current_datetime", return_value=when.astimezone(UTC).replace(tzinfo=None)):
        signer(Credentials(key, secret, token), service, region, **signer_kwargs).add_auth(request)
    return to_incoming(request.prepare())


def parse_rendered(rendered: tuple[int, list[tuple[str, str]], bytes], protocol: str) -> dict[str, Any]:
    """Parse a rendered error with botocore's own response parser for ``protocol``, as a client would."""
    status, headers, body = rendered
    response = {"status_code": status, "headers": HeadersDict(dict(headers)), "body": body}
    parsed: dict[str, Any] = create_parser(protocol).parse(response, None)
    parsed["status"] = status
    return parsed
