"""Shared values and helpers for the state-machine execution tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local_runtime.stepfunctions import LocalStepFunctions

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
ENDPOINT = SUBSTITUTIONS["EndpointName"]
RESOURCE_ID = f"endpoint/{ENDPOINT}/variant/AllTraffic"
# Where the session fixture uploads the rendered dataset and the packaged training/ (the events point here).
DATA_URI = f"s3://{SUBSTITUTIONS['DataBucket']}/datasets/dogImages/"
SOURCE_URI = f"s3://{SUBSTITUTIONS['ArtifactBucket']}/code/sourcedir.tar.gz"
# Generous: a real training job is ~10-20 s on an idle 2-core box, far more when other work shares the CPUs.
TIMEOUT = 300.0


def sfn_event(name: str) -> dict[str, Any]:
    """An execution input fixture from tests/events/sfn_<name>.json."""
    return json.loads((EVENTS / f"sfn_{name}.json").read_text())


def quick(gate: float) -> dict[str, Any]:
    """The small event, trained for 2 optimizer steps only: near-chance accuracy in a few seconds.

    Args:
        gate: Gate.MinTestAccuracy for the execution.
    """
    payload = sfn_event("local_small")
    payload["Hyperparameters"] = {**payload["Hyperparameters"], "epochs": "1", "max-steps": "2"}
    payload["Gate"] = {"MinTestAccuracy": gate}
    return payload


def run(sfn: LocalStepFunctions, payload: dict[str, Any], name: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Start one execution and wait for its end; returns the execution record."""
    return sfn.wait(sfn.start_execution(payload, name=name), timeout=timeout)


def states(sfn: LocalStepFunctions, record: dict[str, Any]) -> list[str]:
    """Names of the states entered, in order."""
    return [e["state"] for e in sfn.history(record["executionArn"]) if e["type"].endswith("StateEntered")]


def metrics(job: dict[str, Any]) -> dict[str, float]:
    """A DescribeTrainingJob answer's FinalMetricDataList as a dict."""
    return {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
