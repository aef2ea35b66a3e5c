"""local_aws.edge + local_aws.sts: one endpoint authenticates every request, then dispatches by signing name.

Real boto3 clients sign the requests; they reach the edge in-process (tests/unit/local_aws/wsgi_boto3.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from werkzeug.test import Client

from local_aws.auth.credentials import IssuedCredentials, StaticCredentialStore
from local_aws.edge import CALLER_KEY, Edge
from local_aws.logs.api import LogsApi
from local_aws.logs.store import LogStore
from local_aws.sts import StsApi
from tests.unit.local_aws.wsgi_boto3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, wsgi_client

CREDS = IssuedCredentials(
    ACCESS_KEY_ID, SECRET_ACCESS_KEY, "123456789012", "arn:aws:iam::123456789012:user/local-operator", "local-operator"
)
StartResponse = Callable[..., Any]


class Fallback:
    """moto's app for every other signing name: records who called, answers an empty SNS ListTopics."""

    def __init__(self) -> None:
        self.callers: list[Any] = []

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        self.callers.append(environ.get(CALLER_KEY))
        body = (
            b'<ListTopicsResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><ListTopicsResult><Topics/>'
            b"</ListTopicsResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></ListTopicsResponse>"
        )
        start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]


@pytest.fixture
def fallback() -> Fallback:
    return Fallback()


@pytest.fixture
def edge(tmp_path: Path, fallback: Fallback) -> Edge:
    services = {"logs": LogsApi(LogStore(tmp_path)), "sts": StsApi(fallback)}
    return Edge(StaticCredentialStore(CREDS), services, fallback)


def test_signed_requests_reach_the_service_they_signed_for(edge: Edge, fallback: Fallback) -> None:
    """logs goes to the Logs app, sns (not implemented locally) to moto, with the verified caller attached."""
    logs = wsgi_client("logs", edge)
    logs.create_log_group(logGroupName="/aws/lambda/fn")
    assert [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]] == ["/aws/lambda/fn"]
    assert wsgi_client("sns", edge).list_topics()["Topics"] == []
    assert fallback.callers[-1].service == "sns"
    assert fallback.callers[-1].identity.principal_arn == CREDS.principal_arn


def test_get_caller_identity_names_the_issued_user(edge: Edge) -> None:
    """STS answers with the issued key's own user, account and a stable AIDA user id."""
    identity = wsgi_client("sts", edge).get_caller_identity()
    assert identity["Arn"] == "arn:aws:iam::123456789012:user/local-operator"
    assert identity["Account"] == "123456789012"
    assert identity["UserId"].startswith("AIDA") and len(identity["UserId"]) == 21
    assert wsgi_client("sts", edge).get_caller_identity()["UserId"] == identity["UserId"]


@pytest.mark.parametrize(
    ("key", "secret", "code"),
    [
        ("AKIAUNKNOWN000000000", SECRET_ACCESS_KEY, "UnrecognizedClientException"),
        (ACCESS_KEY_ID, "x" * 40, "InvalidSignatureException"),
    ],
)
def test_bad_credentials_get_the_services_own_auth_error(edge: Edge, key: str, secret: str, code: str) -> None:
    """An unknown key or a wrong secret is refused in the addressed service's protocol, before the service runs."""
    logs = wsgi_client("logs", edge, key=key, secret=secret)
    with pytest.raises(ClientError) as info:
        logs.describe_log_groups()
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_motos_admin_api_is_closed(edge: Edge, fallback: Fallback) -> None:
    """/moto-api (reset, seed) would let any caller wipe the local AWS: 403 before authentication or dispatch."""
    response = Client(edge).post("/moto-api/reset")
    assert response.status_code == 403
    assert response.get_json() == {"__type": "AccessDeniedException", "message": "Access Denied"}
    assert fallback.callers == []
