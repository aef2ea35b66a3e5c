"""Fixtures for the raw-socket probes: the three kinds of port, a real model endpoint behind them, request makers.

The endpoint serves ``training/inference.py`` + ``training/model.py`` with a freshly initialised ``smallcnn`` (no
training): the model.tar.gz is built here, uploaded through the S3 API to the stack's artifact bucket and deployed
through the SageMaker API under the stack's ``EndpointName`` (the name the REST API's Lambda calls), so
``POST /predict`` runs end to end. Another module of the session may use that name too: an endpoint already
InService is reused (and left in place); one this module created is deleted with its model and config.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from http_probe_helpers import (
    HOST,
    Headers,
    Response,
    Signer,
    build_request,
    chunked,
    corpus_image,
    exchange,
    thread_count,
)

from tests.integration.local_aws_fixtures import Aws, serving_endpoint

PORT_NAMES = ("edge", "api", "container")
JSON_11 = "application/x-amz-json-1.1"


@dataclass(frozen=True)
class ProbeEndpoint:
    """The model endpoint behind the SageMaker runtime and the REST API, and its one instance."""

    name: str
    port: int  # the instance's own port (internal to the local runtime)
    pid: int  # the instance's model-server process
    created: bool  # this module deployed it (and deletes it)


@dataclass(frozen=True)
class Port:
    """One of the three kinds of port the local runtime serves."""

    name: str  # "edge" | "api" | "container"
    port: int
    pid: int  # the serving process (this one for the in-process edge and API)

    @property
    def in_process(self) -> bool:
        return self.pid == os.getpid()

    def threads(self) -> int:
        """Threads of the serving process (``threading.active_count()`` in-process, ``/proc`` for a container)."""
        return threading.active_count() if self.in_process else thread_count(self.pid)


def _instance(local_aws: Aws, name: str) -> tuple[int, int]:
    # NOTE: test-only access to a private attribute: an instance's port is internal to the local runtime (AWS has
    # no such thing to describe), and these probes must reach the model server itself.
    control = local_aws.runtime._control
    assert control is not None
    instance = control.endpoints._fleets[name].instances[0]
    cmdline = Path(f"/proc/{instance.proc.pid}/cmdline").read_bytes()
    assert b"local_aws.sagemaker.container" in cmdline, cmdline
    return instance.port, instance.proc.pid


@pytest.fixture(scope="module")
def probe_endpoint(local_aws: Aws) -> Iterator[ProbeEndpoint]:
    """The stack's endpoint, InService with a real (untrained) smallcnn; created here unless it already serves."""
    name = local_aws.output("EndpointName")
    with serving_endpoint(local_aws, name, "http-probes") as created:
        port, pid = _instance(local_aws, name)
        yield ProbeEndpoint(name, port, pid, created=created)


@pytest.fixture(scope="module")
def signer(local_aws: Aws) -> Signer:
    """SigV4 with the credentials the runtime issued."""
    creds = local_aws.runtime.credentials
    assert creds is not None
    return Signer(creds.access_key_id, creds.secret_access_key)


@pytest.fixture(scope="module")
def ports(local_aws: Aws, probe_endpoint: ProbeEndpoint) -> dict[str, Port]:
    """The edge, the REST API and the endpoint's model container, by name."""

    def port_of(url: str) -> int:
        return int(url.rsplit(":", 1)[1])

    return {
        "edge": Port("edge", port_of(local_aws.url), os.getpid()),
        "api": Port("api", port_of(local_aws.api_url), os.getpid()),
        "container": Port("container", probe_endpoint.port, probe_endpoint.pid),
    }


@dataclass(frozen=True)
class Requests:
    """Exact request bytes for each kind of port: a prediction, a cheap marker, an outer request for a body."""

    ports: dict[str, Port]
    signer: Signer
    endpoint: str
    jpeg: bytes

    def predict(self, name: str) -> bytes:
        """A complete request that, if served, answers 200 with ``predictions`` for the corpus JPEG."""
        port = self.ports[name].port
        headers: Headers = [("Content-Type", "image/jpeg"), ("Accept", "application/json")]
        if name == "edge":
            target = f"/endpoints/{self.endpoint}/invocations"
            return self.signer.request("sagemaker", "POST", port, target, headers, self.jpeg)
        if name == "api":
            return self.signer.request("execute-api", "POST", port, "/predict", headers, self.jpeg)
        headers = [("Host", HOST), *headers, ("Content-Length", str(len(self.jpeg)))]
        return build_request("POST", "/invocations", headers, self.jpeg)

    def marker(self, name: str) -> bytes:
        """A cheap request whose answer ``is_marker`` recognises."""
        port = self.ports[name].port
        if name == "edge":
            body = b"Action=GetCallerIdentity&Version=2011-06-15"
            form = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
            return self.signer.request("sts", "POST", port, "/", form, body)
        if name == "api":
            return self.signer.request("execute-api", "GET", port, "/health", [])
        return build_request("GET", "/ping", [("Host", HOST)])

    @staticmethod
    def is_marker(name: str, response: Response) -> bool:
        """The answer to ``marker(name)``."""
        if name == "edge":
            return response.status == 200 and b"GetCallerIdentityResponse" in response.body
        if name == "api":
            return response.status == 200 and response.json().get("status") == "ok"
        # The container's /ping answers as TorchServe does behind the SageMaker PyTorch container.
        return response.status == 200 and response.json().get("status") == "Healthy"

    def outer(self, name: str, body: bytes, framing: Callable[[bytes], tuple[Headers, bytes]] | None = None) -> bytes:
        """A request carrying ``body`` (signed over ``body`` where the port checks signatures), framed by ``framing``.

        ``framing(body)`` returns the framing headers and the bytes on the wire; the default is correct chunked
        encoding. The edge gets a SageMaker control-plane call, the API a signed ``GET /health``, the container
        ``GET /ping``.
        """
        framing = framing or (lambda raw: ([("Transfer-Encoding", "chunked")], chunked(raw)))
        frame_headers, wire = framing(body)
        port = self.ports[name].port
        if name == "edge":
            base: Headers = [("Content-Type", JSON_11), ("X-Amz-Target", "SageMaker.ListEndpoints")]
            headers = self.signer.headers("sagemaker", "POST", port, "/", base, body)
            return build_request("POST", "/", [*headers, *frame_headers], wire)
        if name == "api":
            headers = self.signer.headers("execute-api", "GET", port, "/health", [], body)
            return build_request("GET", "/health", [*headers, *frame_headers], wire)
        return build_request("GET", "/ping", [("Host", HOST), *frame_headers], wire)

    def framing_probe(self, name: str, headers: Headers, body: bytes = b"") -> bytes:
        """A request to a real route of the port with the given framing headers (for Content-Length probes)."""
        port = self.ports[name].port
        if name == "edge":
            base: Headers = [
                ("Host", f"{HOST}:{port}"),
                ("Content-Type", JSON_11),
                ("X-Amz-Target", "SageMaker.ListEndpoints"),
            ]
            return build_request("POST", "/", [*base, *headers], body)
        if name == "api":
            base = [("Host", f"{HOST}:{port}"), ("Content-Type", "image/jpeg")]
            return build_request("POST", "/predict", [*base, *headers], body)
        return build_request("POST", "/invocations", [("Host", HOST), ("Content-Type", "image/jpeg"), *headers], body)


@pytest.fixture(scope="module")
def requests_for(ports: dict[str, Port], signer: Signer, probe_endpoint: ProbeEndpoint) -> Requests:
    """Request makers for the three ports."""
    return Requests(ports, signer, probe_endpoint.name, corpus_image("apigw_predict_jpeg"))


@pytest.fixture(scope="module")
def warm(ports: dict[str, Port], requests_for: Requests, probe_endpoint: ProbeEndpoint) -> None:
    """One good prediction through each port first: cold starts (Lambda, torch) are not what is measured.

    An endpoint this module deployed must predict; one reused from another module may serve another model, so it
    only has to answer without a server error.
    """
    for name in PORT_NAMES:
        ex = exchange(ports[name].port, requests_for.predict(name), timeout_s=60, quiet_s=0)
        if probe_endpoint.created:
            assert ex.first.status == 200 and b"predictions" in ex.first.body, (name, ex.raw[:500])
        else:
            assert ex.first.status < 500, (name, ex.raw[:500])
