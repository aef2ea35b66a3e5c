"""Fixtures for the raw-socket probes: the three kinds of port, a real model endpoint behind them, request makers.

The endpoint serves ``training/inference.py`` + ``training/model.py`` with a freshly initialised ``smallcnn`` (no
training): the model.tar.gz is built here, uploaded through the S3 API to the stack's artifact bucket and deployed
through the SageMaker API under the stack's ``EndpointName`` (the name the REST API's Lambda calls), so
``POST /predict`` runs end to end. Another module of the session may use that name too: an endpoint already
InService is reused (and left in place); one this module created is deleted with its model and config.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from http_probe_helpers import (
    HOST,
    REPO_ROOT,
    Headers,
    Response,
    Signer,
    build_request,
    chunked,
    corpus_image,
    exchange,
    thread_count,
)

from tests.integration.local_aws_fixtures import Aws

PORT_NAMES = ("edge", "api", "container")
IMAGE_SIZE = 32  # the smallest size eval_transform handles well; a forward pass takes milliseconds on one core
CLASSES = ["beagle", "corgi", "husky"]
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


def _artifact() -> bytes:
    """model.tar.gz in train.py's layout: model.pth, classes.json, metadata.json, code/inference.py, code/model.py."""
    import torch

    import model as arch  # training/model.py (training/ is on sys.path, as in the SageMaker container)

    torch.manual_seed(0)
    net = arch.create_model("smallcnn", len(CLASSES))
    weights = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, weights)
    metadata = {"arch": "smallcnn", "image_size": IMAGE_SIZE, "num_classes": len(CLASSES), "model_version": "probe-v1"}
    files = {
        "model.pth": weights.getvalue(),
        "classes.json": json.dumps(CLASSES).encode(),
        "metadata.json": json.dumps(metadata).encode(),
        "code/inference.py": (REPO_ROOT / "training" / "inference.py").read_bytes(),
        "code/model.py": (REPO_ROOT / "training" / "model.py").read_bytes(),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _wait_status(sm: Any, name: str, timeout_s: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=name)
        if described["EndpointStatus"] not in ("Creating", "Updating", "SystemUpdating") or time.monotonic() > deadline:
            return described
        time.sleep(0.5)


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
    sm = local_aws.client("sagemaker")
    name = local_aws.output("EndpointName")
    try:
        existing = _wait_status(sm, name)
    except ClientError:
        existing = None
    if existing is not None:
        if existing["EndpointStatus"] != "InService":
            pytest.skip(f"endpoint {name} exists in status {existing['EndpointStatus']}; it is not this module's")
        port, pid = _instance(local_aws, name)
        yield ProbeEndpoint(name, port, pid, created=False)
        return
    bucket = local_aws.output("ArtifactBucketName")
    suffix = uuid.uuid4().hex[:8]
    key = f"http-probes/{suffix}/model.tar.gz"
    model_name = config_name = f"http-probes-{suffix}"
    s3 = local_aws.client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=_artifact())
    sm.create_model(
        ModelName=model_name,
        ExecutionRoleArn=local_aws.output("SageMakerExecutionRoleArn"),
        PrimaryContainer={"Image": "local", "ModelDataUrl": f"s3://{bucket}/{key}"},
    )
    sm.create_endpoint_config(
        EndpointConfigName=config_name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model_name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config_name)
    try:
        described = _wait_status(sm, name)
        assert described["EndpointStatus"] == "InService", described.get("FailureReason")
        port, pid = _instance(local_aws, name)
        yield ProbeEndpoint(name, port, pid, created=True)
    finally:
        for call in (
            lambda: sm.delete_endpoint(EndpointName=name),
            lambda: sm.delete_endpoint_config(EndpointConfigName=config_name),
            lambda: sm.delete_model(ModelName=model_name),
            lambda: s3.delete_object(Bucket=bucket, Key=key),
        ):
            with contextlib.suppress(ClientError):
                call()


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
        return response.status == 200 and response.body == b""

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
