"""Shared values for the state-machine execution tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
