"""Fixtures: the real ASL in moto's interpreter against the real local SageMaker (real training, real serving).

CPU is the budget here: one SageMakerServer, one rendered dataset and one source upload serve the whole directory
(session scope), and one moto session serves each module. The SageMaker state (jobs, models, the endpoint) carries
over from test to test on purpose; the ``fresh`` and ``serving`` fixtures put the endpoint in the state a test needs,
reusing what an earlier test left where they can.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from sfn_fixtures import DATA_URI, ENDPOINT, SOURCE_URI, SUBSTITUTIONS, run, sfn_event

from local_runtime.s3 import LocalS3
from local_runtime.sagemaker.server import SageMakerServer
from local_runtime.stepfunctions import LocalStepFunctions
from tools.dataset import render_digits
from tools.ops import package_source

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Deployment:
    """What the endpoint serves, read back from the server."""

    config_name: str
    model_name: str
    training_job: str
    test_top1: str
    instance_type: str
    creation_time: Any


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 16 px digits: 1,259 train / 269 valid / 269 test images, 10 classes; smallcnn reaches ~0.9 in 2 epochs.
    return render_digits(tmp_path_factory.mktemp("digits16"), size=16)


@pytest.fixture(scope="session")
def sagemaker(tmp_path_factory: pytest.TempPathFactory, dataset: Path) -> Iterator[SageMakerServer]:
    """The local SageMaker, with the dataset and the packaged training/ where the events point."""
    home = tmp_path_factory.mktemp("sfn-sagemaker")
    s3 = LocalS3(home / "s3")
    s3.upload_dir(dataset, DATA_URI)
    s3.put_bytes(SOURCE_URI, package_source(REPO / "training").data)
    with pytest.MonkeyPatch.context() as mp:
        # Training jobs and endpoint workers inherit this process's environment: one thread each on 2 shared cores.
        mp.setenv("OMP_NUM_THREADS", "1")
        server = SageMakerServer(home).start()
        yield server
        server.stop()


def _clients(url: str) -> tuple[Any, Any]:
    cfg = Config(region_name="us-east-1", retries={"max_attempts": 1})
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    return session.client("sagemaker", endpoint_url=url, config=cfg), session.client(
        "sagemaker-runtime", endpoint_url=url, config=cfg
    )


@pytest.fixture(scope="session")
def sm(sagemaker: SageMakerServer) -> Any:
    """A boto3 SageMaker client on the local server (for reading back what executions did)."""
    return _clients(sagemaker.url)[0]


@pytest.fixture(scope="session")
def runtime(sagemaker: SageMakerServer) -> Any:
    """A boto3 SageMaker Runtime client on the local server."""
    return _clients(sagemaker.url)[1]


@pytest.fixture(scope="session")
def test_image(dataset: Path) -> bytes:
    """One held-out JPEG from the rendered dataset."""
    return next(p for p in sorted((dataset / "test").rglob("*.jpg"))).read_bytes()


@pytest.fixture(scope="module")
def shared_sfn(tmp_path_factory: pytest.TempPathFactory, sagemaker: SageMakerServer) -> Iterator[LocalStepFunctions]:
    # NOTE: one moto session per module: creating the state machine costs seconds (moto parses the ASL with ANTLR).
    with LocalStepFunctions(tmp_path_factory.mktemp("sfn"), sagemaker.url, substitutions=SUBSTITUTIONS) as local:
        yield local


@pytest.fixture
def sfn(
    shared_sfn: LocalStepFunctions, sagemaker: SageMakerServer, monkeypatch: pytest.MonkeyPatch
) -> LocalStepFunctions:
    """The module's state machine, with moto's SageMaker calls routed to the local server."""
    # The root conftest clears AWS_ENDPOINT_URL_* for every test; the module-wide session set them before that.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", sagemaker.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", sagemaker.url)
    return shared_sfn


def predict_version(runtime: Any, image: bytes) -> str:
    """The model_version that the endpoint's inference handler answers with (proves which model serves)."""
    response = runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=image, ContentType="image/jpeg")
    return str(json.loads(response["Body"].read())["model_version"])


def read_deployment(sm: Any) -> Deployment | None:
    """The endpoint's config, model and recorded accuracy, or None when it is missing or not InService."""
    try:
        endpoint = sm.describe_endpoint(EndpointName=ENDPOINT)
    except ClientError:
        return None
    if endpoint["EndpointStatus"] != "InService":
        return None
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    if "dogbreed:test-top1" not in tags:
        return None
    return Deployment(
        config_name=endpoint["EndpointConfigName"],
        model_name=config["ProductionVariants"][0]["ModelName"],
        training_job=tags["dogbreed:training-job"],
        test_top1=tags["dogbreed:test-top1"],
        instance_type=config["ProductionVariants"][0]["InstanceType"],
        creation_time=endpoint["CreationTime"],
    )


def remove_endpoint(sm: Any, sfn: LocalStepFunctions) -> None:
    """Delete the endpoint (the local DeleteEndpoint drains and stops its workers) and moto's autoscaling record."""
    try:
        sm.delete_endpoint(EndpointName=ENDPOINT)
    except ClientError as exc:
        assert "Could not find endpoint" in str(exc), exc
    client = boto3.client("application-autoscaling", region_name="us-east-1")
    for policy in sfn.scaling_policies():
        client.delete_scaling_policy(
            PolicyName=policy["PolicyName"],
            ServiceNamespace="sagemaker",
            ResourceId=policy["ResourceId"],
            ScalableDimension=policy["ScalableDimension"],
        )
    for target in sfn.scalable_targets():
        client.deregister_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=target["ResourceId"], ScalableDimension=target["ScalableDimension"]
        )


@pytest.fixture
def fresh(sfn: LocalStepFunctions, sm: Any) -> LocalStepFunctions:
    """The state machine, with no endpoint and no autoscaling: the next execution creates the endpoint."""
    remove_endpoint(sm, sfn)
    return sfn


@pytest.fixture
def serving(sfn: LocalStepFunctions, sm: Any) -> Deployment:
    """An InService endpoint deployed by an execution (with its autoscaling); deploys one only when none is left."""
    current = read_deployment(sm)
    if current is not None and sfn.scalable_targets():
        return current
    remove_endpoint(sm, sfn)
    record = run(sfn, sfn_event("local_small"), f"serving-{uuid.uuid4().hex[:8]}")
    assert record["status"] == "SUCCEEDED", (record.get("error"), record.get("cause"))
    deployed = read_deployment(sm)
    assert deployed is not None
    return deployed
