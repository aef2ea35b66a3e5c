"""Fixtures: the real ASL in moto's interpreter, against a SageMaker fake that the test can steer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local_runtime.stepfunctions import LocalStepFunctions
from tests.integration.statemachine.fake_sagemaker import FakeSageMaker, FakeSageMakerServer

EVENTS = Path(__file__).resolve().parents[2] / "events"

# What template.yaml's DefinitionSubstitutions give with default parameters (names per CONTRACTS §5/§7).
SUBSTITUTIONS = {
    "SageMakerRoleArn": "arn:aws:iam::123456789012:role/dogbreed-dev-sagemaker",
    "ArtifactBucket": "dogbreed-dev-artifacts-123456789012",
    "DataBucket": "dogbreed-dev-data-123456789012",
    "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/0c2a7f7e-5a7b-4d0e-9a53-1f0f1e0a7d11",
    "TrainingImageUri": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.6.0-cpu-py312",
    "InferenceImageUri": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312",
    "EndpointName": "dogbreed-dev",
    "ResourcePrefix": "dogbreed-dev",
    "Rollback5xxAlarmName": "dogbreed-dev-endpoint-5xx",
    "RollbackLatencyAlarmName": "dogbreed-dev-endpoint-latency",
    "DefaultTrainingInstanceType": "ml.m5.xlarge",
    "DefaultTrainingInstanceCount": "1",
    "DefaultUseSpot": "false",
    "DefaultEndpointInstanceType": "ml.m5.large",
    "DefaultMinCapacity": "1",
    "DefaultMaxCapacity": "2",
    "DefaultTargetInvocations": "70",
    "DefaultAccuracyThreshold": "0.7",
}


def sfn_event(name: str) -> dict[str, Any]:
    """An execution input fixture from tests/events/sfn_<name>.json."""
    return json.loads((EVENTS / f"sfn_{name}.json").read_text())


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
def shared_sfn(tmp_path_factory: pytest.TempPathFactory, fake_server: FakeSageMakerServer) -> Iterator[LocalStepFunctions]:
    # NOTE: one moto session per module: creating the state machine costs seconds (moto parses the ASL with ANTLR).
    with LocalStepFunctions(tmp_path_factory.mktemp("sfn"), fake_server.url, substitutions=SUBSTITUTIONS) as local:
        yield local


@pytest.fixture
def sfn(shared_sfn: LocalStepFunctions, fake: FakeSageMakerServer, monkeypatch: pytest.MonkeyPatch) -> LocalStepFunctions:
    """The shared state machine, with no autoscaling left over from an earlier test."""
    # The root conftest clears AWS_ENDPOINT_URL_* for every test; the module-wide session set them before that.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", fake.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", fake.url)
    client = boto3.client("application-autoscaling", region_name="us-east-1")
    for policy in shared_sfn.scaling_policies():
        client.delete_scaling_policy(PolicyName=policy["PolicyName"], ServiceNamespace="sagemaker",
                                     ResourceId=policy["ResourceId"], ScalableDimension=policy["ScalableDimension"])
    for target in shared_sfn.scalable_targets():
        client.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=target["ResourceId"],
                                          ScalableDimension=target["ScalableDimension"])
    return shared_sfn
