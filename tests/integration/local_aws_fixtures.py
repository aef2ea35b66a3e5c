"""A running local AWS for integration tests: in this process, on ephemeral ports, in a temp home.

moto's backends are process-global, so one ``LocalAws`` serves the whole session (``local_aws`` fixture); tests that
need a real restart run the runtime in a subprocess instead (``ops up --serve``).
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from local_aws.constants import REGION, REPO_ROOT
from local_aws.server import LocalAws

UNTRAINED_CLASSES = ["beagle", "corgi", "husky"]
UNTRAINED_IMAGE_SIZE = 32  # the smallest size eval_transform handles well; a forward pass takes milliseconds


@dataclass
class Aws:
    """Clients on a running local AWS, signed with the credentials it issued."""

    runtime: LocalAws
    home: Path

    @property
    def url(self) -> str:
        return self.runtime.endpoints.aws_url

    @property
    def api_url(self) -> str:
        return self.runtime.endpoints.api_url

    def session(self) -> boto3.session.Session:
        creds = self.runtime.credentials
        assert creds is not None
        return boto3.session.Session(
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=None,
            region_name=REGION,
        )

    def client(self, service: str, retries: int = 1, **config: Any) -> Any:
        return self.session().client(
            service,
            endpoint_url=self.url,
            config=Config(retries={"max_attempts": retries, "mode": "standard"}, **config),
        )

    def output(self, key: str) -> str:
        stack = self.runtime.stack
        assert stack is not None
        if key == "ApiUrl":
            return self.api_url
        return stack.outputs[key]


def start_local_aws(home: Path, overrides: Mapping[str, str] | None = None) -> Iterator[Aws]:
    """Start one local AWS (ports 0; template parameters ``overrides``), yield its clients, stop it."""
    with pytest.MonkeyPatch.context() as mp:
        # Training jobs and endpoint instances inherit this process's environment: one thread each on 2 cores.
        mp.setenv("OMP_NUM_THREADS", "1")
        runtime = LocalAws(home, aws_port=0, api_port=0, overrides=overrides).start()
        try:
            yield Aws(runtime, home)
        finally:
            runtime.stop()


def untrained_artifact(classes: list[str] = UNTRAINED_CLASSES, version: str = "probe-v1") -> bytes:
    """model.tar.gz in train.py's layout (model.pth, classes.json, metadata.json, code/inference.py, code/model.py)
    holding a freshly initialised, seeded ``smallcnn``: real serving code, no training time."""
    import torch

    import model as arch  # training/model.py (training/ is on sys.path, as in the SageMaker container)

    torch.manual_seed(0)
    net = arch.create_model("smallcnn", len(classes))
    weights = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, weights)
    metadata = {
        "arch": "smallcnn",
        "image_size": UNTRAINED_IMAGE_SIZE,
        "num_classes": len(classes),
        "model_version": version,
    }
    files = {
        "model.pth": weights.getvalue(),
        "classes.json": json.dumps(classes).encode(),
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


def wait_endpoint(sm: BaseClient, name: str, timeout_s: float = 180.0) -> dict[str, Any]:
    """DescribeEndpoint once the endpoint leaves Creating/Updating/SystemUpdating (or the timeout passes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=name)
        if described["EndpointStatus"] not in ("Creating", "Updating", "SystemUpdating") or time.monotonic() > deadline:
            return described
        time.sleep(0.5)


@contextlib.contextmanager
def serving_endpoint(aws: Aws, name: str, prefix: str) -> Iterator[bool]:
    """An InService endpoint ``name`` serving ``untrained_artifact()``; yields whether it was created here.

    An endpoint already InService under that name (another module of the session deployed it) is reused and left
    in place; one created here is deleted with its model, config and artifact.
    """
    sm = aws.client("sagemaker")
    try:
        existing = wait_endpoint(sm, name)
    except ClientError:
        existing = None
    if existing is not None:
        if existing["EndpointStatus"] != "InService":
            pytest.skip(f"endpoint {name} exists in status {existing['EndpointStatus']}; it is not this module's")
        yield False
        return
    bucket = aws.output("ArtifactBucketName")
    suffix = uuid.uuid4().hex[:8]
    key = f"{prefix}/{suffix}/model.tar.gz"
    model_name = config_name = f"{prefix}-{suffix}"
    s3 = aws.client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=untrained_artifact())
    sm.create_model(
        ModelName=model_name,
        ExecutionRoleArn=aws.output("SageMakerExecutionRoleArn"),
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
        described = wait_endpoint(sm, name)
        assert described["EndpointStatus"] == "InService", described.get("FailureReason")
        yield True
    finally:
        for call in (
            lambda: sm.delete_endpoint(EndpointName=name),
            lambda: sm.delete_endpoint_config(EndpointConfigName=config_name),
            lambda: sm.delete_model(ModelName=model_name),
            lambda: s3.delete_object(Bucket=bucket, Key=key),
        ):
            with contextlib.suppress(ClientError):
                call()
