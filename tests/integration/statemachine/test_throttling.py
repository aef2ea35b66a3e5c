"""Throttles never kill work; quotas are retried with backoff, then fail naming the quota (issue 8, defect 2).

The local SageMaker injects AWS's faults from ``[chaos.*]`` in the runtime's config (local_aws/chaos.py; here a
test-private file through ``LOCAL_AWS_CONFIG``, re-read on every call): ``[chaos.throttle]`` answers the named
operations with ThrottlingException ("Rate exceeded", HTTP 400), ``[chaos.quota.training]`` refuses
CreateTrainingJob past an instance quota with ResourceLimitExceeded and SageMaker's message.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local_aws.chaos import ENV_CONFIG
from local_aws.clock import ENV_TIME_SCALE
from tests.integration.statemachine.sfn_helpers import (
    TIMEOUT,
    Stack,
    exists,
    history,
    quick,
    remove_endpoint,
    start,
    states,
    wait,
)

ChaosWriter = Callable[[str], None]


@pytest.fixture
def chaos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChaosWriter]:
    """Write the runtime's [chaos] config (every write re-arms a throttle burst); empty again afterwards."""
    path = tmp_path / "config.toml"
    path.write_text("")
    monkeypatch.setenv(ENV_CONFIG, str(path))

    def write(text: str) -> None:
        path.write_text(text)

    yield write
    path.write_text("")


@pytest.mark.slow
def test_throttled_status_reads_go_back_to_their_wait(stack: Stack, chaos: ChaosWriter) -> None:
    """Six throttled DescribeTrainingJob and six throttled DescribeEndpoint (more than the old retries' 3 + 1):
    each costs one poll and waits again; the job is never stopped and the run gets to its gate."""
    name = f"throttled-{uuid.uuid4().hex[:6]}"
    # The burst counts every caller's DescribeEndpoint, as AWS's account-wide rate does, and Application Auto
    # Scaling reads the endpoint of a registered target on its own (local_aws/autoscaling/scaler.py): with no
    # endpoint and no target left by an earlier test, all six land on this execution's lookup.
    remove_endpoint(stack)
    chaos('[chaos.throttle]\noperations = ["DescribeTrainingJob", "DescribeEndpoint"]\nburst = 6\n')
    arn = start(stack.sfn, stack.machine_arn, quick(stack, gate=1.0), name)
    record = wait(stack.sfn, arn, TIMEOUT)

    assert record.status == "FAILED" and record.error == "GateRejected", record.why  # got to the gate
    order = states(history(stack.sfn, arn))
    assert order.count("TrainingReadFailed") == 6
    assert order.count("CountLookupPoll") == 6 and order.count("WaitBeforeLookup") == 6
    assert "StopTrainingJob" not in order and "TrainingStatusUnreadable" not in order
    job = stack.sm.describe_training_job(TrainingJobName=stack.job_name(name))
    assert job["TrainingJobStatus"] == "Completed"


@pytest.mark.slow
def test_a_training_quota_is_retried_then_fails_naming_the_quota(
    stack: Stack, chaos: ChaosWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ResourceLimitExceeded on CreateTrainingJob: 1 + 5 attempts with backoff, then QuotaExceeded with the quota."""
    monkeypatch.setenv(ENV_TIME_SCALE, "600")  # the ~24 min of backoff in a few seconds
    chaos('[chaos.quota.training]\n"ml.m5.xlarge" = 0\n')
    name = f"quota-{uuid.uuid4().hex[:6]}"
    arn = start(stack.sfn, stack.machine_arn, quick(stack, gate=1.0), name)
    record = wait(stack.sfn, arn, TIMEOUT)

    assert record.status == "FAILED" and record.error == "QuotaExceeded", record.why
    assert record.cause is not None and "'ml.m5.xlarge for training job usage' is 0 Instances" in record.cause
    events = history(stack.sfn, arn)
    refused = [
        e
        for e in events
        if e["type"] == "TaskFailed"
        and e["taskFailedEventDetails"]["error"] == "SageMaker.ResourceLimitExceededException"
    ]
    assert len(refused) == 6
    assert not exists(stack.sm.describe_training_job, TrainingJobName=stack.job_name(name))


@pytest.mark.slow
def test_a_quota_that_frees_up_during_the_backoff_lets_the_run_go_on(
    stack: Stack, chaos: ChaosWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first CreateTrainingJob is refused; the quota is raised while the ASL backs off; a retry creates the job."""
    monkeypatch.setenv(ENV_TIME_SCALE, "60")  # backoff intervals of up to 1, 2, 4, 8, 10 s
    chaos('[chaos.quota.training]\n"ml.m5.xlarge" = 0\n')
    name = f"quota-frees-{uuid.uuid4().hex[:6]}"
    payload = quick(stack, gate=1.0)
    payload["Polling"] = {"IntervalSeconds": 60, "MaxIntervalSeconds": 120, "MaxAttempts": 1000}  # 1-2 s real
    arn = start(stack.sfn, stack.machine_arn, payload, name)

    def refused_once() -> bool:
        return any(e["type"] == "TaskFailed" for e in history(stack.sfn, arn))

    deadline = time.monotonic() + 60
    while not refused_once():
        assert time.monotonic() < deadline, "CreateTrainingJob was never refused"
        time.sleep(0.2)
    chaos('[chaos.quota.training]\n"ml.m5.xlarge" = 4\n')
    record = wait(stack.sfn, arn, TIMEOUT)

    assert record.status == "FAILED" and record.error == "GateRejected", record.why  # trained, then gated
    job = stack.sm.describe_training_job(TrainingJobName=stack.job_name(name))
    assert job["TrainingJobStatus"] == "Completed"
