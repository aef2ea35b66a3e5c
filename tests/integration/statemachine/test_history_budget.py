"""History-safe waits: a 72-hour training job and a 48-hour spot wait stay far under the 25,000-event quota.

Step Functions keeps at most 25,000 events per execution history (docs.aws.amazon.com/step-functions/latest/dg/
service-quotas.html); past it the execution fails. The ASL spends one poll budget (Polling.MaxAttempts) across all
its waits and doubles the poll interval up to Polling.MaxIntervalSeconds, so the number of turns depends on the
budget, not on how long SageMaker takes. These tests live through the AWS-length waits on a scaled clock
(LOCAL_AWS_TIME_SCALE, local_aws/clock.py: the ASL's Wait states and the local services read it per call), with a
real training job that runs for as long as the test needs; once the execution has polled that long, the test stops
the job (or SageMaker's own StoppingCondition does), and the execution ends TrainingFailed with a short history.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_aws.clock import ENV_TIME_SCALE
from local_aws.constants import SFN_HISTORY_MAX_EVENTS
from tests.integration.statemachine.sfn_helpers import Stack, describe, history, sfn_event, start, wait

# Long executions (scaled 72 h / 48 h waits; two deploys in a row): `make test-exhaustive` runs them, CI time.
pytestmark = pytest.mark.exhaustive

HISTORY_QUOTA = SFN_HISTORY_MAX_EVENTS  # enforced by the local Step Functions too (history_quota.py)
# tests/unit/statemachine/test_asl_structure.py::turn_events: Wait 2 + Describe 5 + Choice 2 + Pass 2.
EVENTS_PER_TURN = 11
DEADLINE_S = 600.0


def long_job(stack: Stack, training: dict[str, Any], polling: dict[str, Any]) -> dict[str, Any]:
    """The small event with a job that trains far longer than the test (1000 epochs, no early stop)."""
    payload = sfn_event("local_small", stack)
    payload["Hyperparameters"].update(epochs="1000", patience="0")
    payload["Training"] = {**payload["Training"], **training}
    payload["Polling"] = polling
    payload["Gate"] = {"MinTestAccuracy": 1.0}  # should the job ever finish: deploy nothing
    return payload


def training_waits(events: list[dict[str, Any]]) -> list[int]:
    """The seconds each WaitForTraining asked for (AWS seconds: the ASL's own values), in order."""
    return [
        json.loads(e["stateEnteredEventDetails"]["input"])["Poll"]["Interval"]
        for e in events
        if e["type"] == "WaitStateEntered" and e["stateEnteredEventDetails"]["name"] == "WaitForTraining"
    ]


def turn_lengths(events: list[dict[str, Any]]) -> list[int]:
    """Events from one WaitForTraining entry to the next (one poll turn each)."""
    entries = [
        e["id"]
        for e in events
        if e["type"] == "WaitStateEntered" and e["stateEnteredEventDetails"]["name"] == "WaitForTraining"
    ]
    return [b - a for a, b in itertools.pairwise(entries)]


def live_through(
    stack: Stack, payload: dict[str, Any], name: str, aws_hours: float, scale: float
) -> tuple[Any, list[dict[str, Any]]]:
    """Run ``payload`` until its training job has run ``aws_hours`` of AWS time, stop the job, wait for the end.

    AWS time is the wall clock since the job's TrainingStartTime times the scale (timestamps stay wall-clock,
    local_aws/clock.py). The history is read once, at the end: the local GetExecutionHistory gets slow on long
    histories, and polling it would load the very thing under test.
    """
    arn = start(stack.sfn, stack.machine_arn, payload, name)
    job = stack.job_name(name)
    deadline = time.monotonic() + DEADLINE_S
    while describe(stack.sfn, arn).status == "RUNNING":
        started = None
        with contextlib.suppress(ClientError):  # not created yet
            started = stack.sm.describe_training_job(TrainingJobName=job).get("TrainingStartTime")
        if started is not None and (time.time() - started.timestamp()) * scale >= aws_hours * 3600:
            try:
                stack.sm.stop_training_job(TrainingJobName=job)
            except ClientError as exc:  # SageMaker's own StoppingCondition got there first
                assert "training job is in status Stopp" in str(exc), exc
            break
        assert time.monotonic() < deadline, f"{name}: still polling after {DEADLINE_S:g} s"
        time.sleep(1.0)
    ended = wait(stack.sfn, arn, DEADLINE_S)
    job_record = stack.sm.describe_training_job(TrainingJobName=job)
    lasted = (job_record["TrainingEndTime"] - job_record["TrainingStartTime"]).total_seconds() * scale
    assert lasted >= aws_hours * 3600 * 0.98, f"the job lasted {lasted / 3600:.1f} h of AWS time"
    return ended, history(stack.sfn, arn)


@pytest.mark.slow
def test_a_72_hour_training_job_polls_within_the_budget(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """72 h of polling one job: a few hundred events, each turn 11 events, the interval at its 1 h cap."""
    scale = 7200.0  # 1 h of AWS time in 0.5 s
    monkeypatch.setenv(ENV_TIME_SCALE, str(scale))
    payload = long_job(
        stack,
        {"MaxRuntimeSeconds": 2419200, "MaxWaitSeconds": 2419200},  # SageMaker's 28-day maximum
        {"IntervalSeconds": 60, "MaxIntervalSeconds": 3600, "MaxAttempts": 2000},
    )
    name = f"hist-72h-{uuid.uuid4().hex[:6]}"
    ended, events = live_through(stack, payload, name, aws_hours=72, scale=scale)

    assert ended.status == "FAILED" and ended.error == "TrainingFailed", ended.why
    waits = training_waits(events)
    assert waits[:7] == [60, 120, 240, 480, 960, 1920, 3600] and set(waits[7:]) == {3600}
    assert set(turn_lengths(events)) == {EVENTS_PER_TURN}
    # Everything but the training turns: the states before and after the wait, each entered once.
    assert len(events) - len(turn_lengths(events)) * EVENTS_PER_TURN < 400
    assert len(events) < 1000 < HISTORY_QUOTA
    assert events[-1]["type"] == "ExecutionFailed"
    print(f"72 h job: {len(events)} events, {len(waits)} training polls, {sum(waits) / 3600:.1f} h of ASL waits")


@pytest.mark.slow
def test_the_default_polling_outlasts_a_48_hour_spot_wait(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """A spot job on the default polling (60 s doubling to 480 s, 2000 polls) is watched for its whole 48 h wait."""
    scale = 2400.0  # the 480 s cap in 0.2 s
    monkeypatch.setenv(ENV_TIME_SCALE, str(scale))
    payload = long_job(
        stack,
        {"UseSpot": True, "MaxRuntimeSeconds": 172800, "MaxWaitSeconds": 172800},
        {"IntervalSeconds": 60, "MaxAttempts": 2000},  # MaxIntervalSeconds: the default, 8 x 60 s
    )
    name = f"hist-spot-{uuid.uuid4().hex[:6]}"
    ended, events = live_through(stack, payload, name, aws_hours=48, scale=scale)

    assert ended.status == "FAILED" and ended.error == "TrainingFailed", ended.why
    job = stack.sm.describe_training_job(TrainingJobName=stack.job_name(name))
    assert job["EnableManagedSpotTraining"] is True
    assert job["StoppingCondition"] == {"MaxRuntimeInSeconds": 172800, "MaxWaitTimeInSeconds": 172800}
    waits = training_waits(events)
    assert waits[:4] == [60, 120, 240, 480] and set(waits[4:]) == {480}
    assert set(turn_lengths(events)) == {EVENTS_PER_TURN}
    # Every turn cost the same, so the whole 2000-poll budget would be 22,000 events: under the quota with the rest.
    # (Here fewer turns than on AWS: the scaled clock shrinks the waits, not the calls' own latency.)
    assert len(waits) <= 2000 and len(events) < HISTORY_QUOTA
    assert events[-1]["type"] == "ExecutionFailed"
    print(f"48 h spot wait: {len(events)} events, {len(waits)} training polls, {sum(waits) / 3600:.1f} h of ASL waits")
