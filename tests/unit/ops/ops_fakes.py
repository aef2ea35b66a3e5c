"""A Target whose clients are handed in (botocore Stubber-wrapped), for the ops tests; no network, no runtime."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import boto3

from ops.target import Target

OUTPUTS = {
    "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:dogbreed-dev-train-deploy",
    "ApiUrl": "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1",
    "EndpointName": "dogbreed-dev",
    "ResourcePrefix": "dogbreed-dev",
    "ArtifactBucketName": "dogbreed-dev-artifacts",
    "DataBucketName": "dogbreed-dev-data",
    "InferenceFunctionName": "dogbreed-dev-inference",
}


@dataclass
class StubbedTarget(Target):
    """A Target on ``aws`` whose ``client(service)`` returns the given clients and whose outputs are known."""

    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str, **config: Any) -> Any:
        return self.clients[service]


@functools.cache
def session() -> boto3.session.Session:
    """One session for every stubbed client: botocore caches the service models it loads per session, so a client
    costs milliseconds instead of re-reading botocore's JSON (credentials: tests/conftest.py's fake ones)."""
    return boto3.session.Session(region_name="us-east-1")


def stubbed_target(clients: dict[str, Any] | None = None, outputs: dict[str, str] | None = None) -> StubbedTarget:
    """A Target with the given clients and outputs (``OUTPUTS`` by default)."""
    return StubbedTarget(
        name="aws",
        stack_name="dogbreed-dev",
        session=session(),
        _outputs=dict(OUTPUTS if outputs is None else outputs),
        clients=clients or {},
    )


def client(service: str) -> Any:
    """A real boto3 client (for Stubber) with the test credentials of tests/conftest.py."""
    return session().client(service)
