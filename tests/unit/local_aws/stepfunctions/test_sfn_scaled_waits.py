"""local_aws.stepfunctions.scaled_waits: the ASL's Wait states and Retry intervals run on LOCAL_AWS_TIME_SCALE.

Each test runs a real definition in moto's interpreter (moto's in-process mock, no sockets) and times it: an hour
of ASL waiting must pass in a fraction of a second at a scale of 36,000 AWS seconds per real second.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_aws.clock import ENV_TIME_SCALE
from local_aws.constants import ACCOUNT_ID, REGION
from local_aws.stepfunctions import interpreter, scaled_waits

ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/unit"
HOUR_WAIT = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}
HOUR_WAIT_PATH = {"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.s", "End": True}}}
# A describe of a job that does not exist fails (SageMaker ValidationException); the Retry waits an hour once.
HOUR_RETRY = {
    "StartAt": "T",
    "States": {
        "T": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob",
            "Parameters": {"TrainingJobName": "missing"},
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 3600, "MaxAttempts": 1}],
            "End": True,
        }
    },
}


def _run(definition: dict[str, Any], payload: dict[str, Any], timeout: float = 60.0) -> tuple[str, float]:
    """Run ``definition`` once in moto's interpreter: (status, real seconds from start to end)."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(name="scaled", definition=json.dumps(definition), roleArn=ROLE)[
            "stateMachineArn"
        ]
        began = time.monotonic()
        execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]
        while (status := sfn.describe_execution(executionArn=execution)["status"]) == "RUNNING":
            assert time.monotonic() - began < timeout, "still RUNNING"
            time.sleep(0.02)
        return status, time.monotonic() - began


@pytest.fixture(autouse=True)
def _applied() -> None:
    interpreter.apply()
    assert scaled_waits.is_applied()


@pytest.mark.parametrize(("definition", "payload"), [(HOUR_WAIT, {}), (HOUR_WAIT_PATH, {"s": 3600})])
def test_an_hour_of_wait_passes_at_the_time_scale(
    monkeypatch: pytest.MonkeyPatch, definition: dict[str, Any], payload: dict[str, Any]
) -> None:
    """Seconds and SecondsPath: 3600 s at 36,000x last 0.1 s (moto alone would wait the hour)."""
    monkeypatch.setenv(ENV_TIME_SCALE, "36000")
    status, took = _run(definition, payload)
    assert status == "SUCCEEDED"
    assert 0.1 <= took < 30.0  # unscaled, it would be an hour; the box may be busy


def test_unscaled_wait_is_the_asl_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """At the default scale a Wait lasts what the ASL says (1 s here)."""
    monkeypatch.delenv(ENV_TIME_SCALE, raising=False)
    status, took = _run(HOUR_WAIT_PATH, {"s": 1})
    assert status == "SUCCEEDED" and 1.0 <= took < 30.0


def test_retry_interval_passes_at_the_time_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Retry's IntervalSeconds (3600) is slept on the local clock too: the retried task fails within seconds."""
    monkeypatch.setenv(ENV_TIME_SCALE, "36000")
    status, took = _run(HOUR_RETRY, {})
    assert status == "FAILED"
    assert 0.1 <= took < 30.0  # unscaled, it would be an hour; the box may be busy
