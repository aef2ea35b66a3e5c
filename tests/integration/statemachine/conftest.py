"""Fixtures: the real ASL in moto's interpreter, against a SageMaker fake that the test can steer."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from fake_sagemaker import FakeSageMaker, FakeSageMakerServer
from sfn_fixtures import SUBSTITUTIONS

from local_runtime.stepfunctions import LocalStepFunctions


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeSageMakerServer]:
    server = FakeSageMakerServer(FakeSageMaker()).start()
    yield server
    server.stop()


@pytest.fixture
def fake(fake_server: FakeSageMakerServer) -> FakeSageMakerServer:
    """The module's fake server with a fresh SageMaker state for this test."""
    fake_server.state = FakeSageMaker()
    return fake_server


@pytest.fixture(scope="module")
def shared_sfn(
    tmp_path_factory: pytest.TempPathFactory, fake_server: FakeSageMakerServer
) -> Iterator[LocalStepFunctions]:
    # NOTE: one moto session per module: creating the state machine costs seconds (moto parses the ASL with ANTLR).
    with LocalStepFunctions(tmp_path_factory.mktemp("sfn"), fake_server.url, substitutions=SUBSTITUTIONS) as local:
        yield local


@pytest.fixture
def sfn(
    shared_sfn: LocalStepFunctions, fake: FakeSageMakerServer, monkeypatch: pytest.MonkeyPatch
) -> LocalStepFunctions:
    """The shared state machine, with no autoscaling left over from an earlier test."""
    # The root conftest clears AWS_ENDPOINT_URL_* for every test; the module-wide session set them before that.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", fake.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", fake.url)
    client = boto3.client("application-autoscaling", region_name="us-east-1")
    for policy in shared_sfn.scaling_policies():
        client.delete_scaling_policy(
            PolicyName=policy["PolicyName"],
            ServiceNamespace="sagemaker",
            ResourceId=policy["ResourceId"],
            ScalableDimension=policy["ScalableDimension"],
        )
    for target in shared_sfn.scalable_targets():
        client.deregister_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=target["ResourceId"], ScalableDimension=target["ScalableDimension"]
        )
    return shared_sfn
