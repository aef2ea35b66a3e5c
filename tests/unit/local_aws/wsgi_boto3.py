"""A real boto3 client whose requests go to a WSGI app in-process (sockets are disabled under tests/unit).

botocore's ``before-send`` event hands each prepared request to werkzeug's test client instead of a socket, so the
app sees exactly the request botocore would have sent, and botocore parses the app's answer (successes and error
codes) with its own protocol parsers, the way any AWS client would.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from werkzeug.test import Client

ENDPOINT = "http://127.0.0.1:4566"
REGION = "us-east-1"
WsgiApp = Callable[..., Iterable[bytes]]


class _Raw(io.BytesIO):
    """The urllib3-like raw body botocore's AWSResponse streams from."""

    def stream(self, amt: int = 65536, decode_content: bool = False) -> Iterator[bytes]:
        while chunk := self.read(amt):
            yield chunk


def route_to_app(client: Any, app: WsgiApp) -> Any:
    """Send every request of ``client`` to ``app`` through werkzeug's test client; returns the client."""
    web = Client(app)

    def send(request: Any, **_: Any) -> AWSResponse:
        parts = urlsplit(request.url)
        body = request.body
        body = body.read() if hasattr(body, "read") else body
        response = web.open(
            parts.path + (f"?{parts.query}" if parts.query else ""),
            base_url=f"{parts.scheme}://{parts.netloc}",
            method=request.method,
            headers=[(k, v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in request.headers.items()],
            data=body.encode() if isinstance(body, str) else body or b"",
        )
        return AWSResponse(request.url, response.status_code, dict(response.headers), _Raw(response.get_data()))

    client.meta.events.register("before-send", send)
    return client


# AWS's documentation example pair (docs.aws.amazon.com/IAM/latest/UserGuide/security-creds.html).
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def wsgi_client(
    service: str, app: WsgiApp, *, key: str = ACCESS_KEY_ID, secret: str = SECRET_ACCESS_KEY, **config: Any
) -> Any:
    """A boto3 client for ``service`` answered by ``app`` (no retries, the given or the example key pair)."""
    return route_to_app(
        boto3.client(
            service,
            endpoint_url=ENDPOINT,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"total_max_attempts": 1}, **config),
        ),
        app,
    )
