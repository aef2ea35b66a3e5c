"""One execution at a time per endpoint (issue 8, defect 6): the deploy lock in DynamoDB.

Between training and the end of Cleanup an execution holds the endpoint's item in the stack's ``<prefix>-deploy-lock``
table (a conditional PutItem: Step Functions' semaphore pattern with one slot). A second execution that reaches the
deploy stage waits while the owner is RUNNING (states:DescribeExecution), takes a lock over whose owner has ended,
and fails EndpointBusy, naming the owner, when its poll budget runs out. The owner here is a real execution of the
same state machine, training a job far longer than the test; the test writes its ARN into the lock item the way
its AcquireDeployLock would have.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.statemachine.sfn_helpers import (
    Stack,
    describe,
    history,
    quick,
    sfn_event,
    start,
    states,
    wait,
)

# Long executions (scaled 72 h / 48 h waits; two deploys in a row): `make test-exhaustive` runs them, CI time.
pytestmark = pytest.mark.exhaustive

DEADLINE_S = 300.0


def lock_table(stack: Stack) -> str:
    return f"{stack.prefix}-deploy-lock"


def lock_owner(stack: Stack) -> str | None:
    """The ARN in the endpoint's lock item, or None when the lock is free."""
    item = stack.aws.client("dynamodb").get_item(
        TableName=lock_table(stack), Key={"LockName": {"S": stack.endpoint}}, ConsistentRead=True
    )
    return item.get("Item", {}).get("Owner", {}).get("S")


@pytest.fixture
def holder(stack: Stack) -> Iterator[str]:
    """A RUNNING execution of the pipeline (training a 1000-epoch job) that owns the endpoint's lock."""
    payload = sfn_event("local_small", stack)
    payload["Hyperparameters"].update(epochs="1000", patience="0")
    name = f"lock-holder-{uuid.uuid4().hex[:6]}"
    arn = start(stack.sfn, stack.machine_arn, payload, name)
    stack.aws.client("dynamodb").put_item(
        TableName=lock_table(stack),
        Item={"LockName": {"S": stack.endpoint}, "Owner": {"S": arn}, "AcquiredAt": {"S": "2026-01-01T00:00:00Z"}},
    )
    try:
        yield arn
    finally:
        if lock_owner(stack) == arn:  # a failed test must not leave the next tests locked out
            stack.aws.client("dynamodb").delete_item(
                TableName=lock_table(stack), Key={"LockName": {"S": stack.endpoint}}
            )
        if describe(stack.sfn, arn).status == "RUNNING":
            stack.sfn.stop_execution(executionArn=arn)
        job = stack.job_name(name)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                stack.sm.stop_training_job(TrainingJobName=job)
                break
            except stack.sm.exceptions.ClientError as exc:  # not created yet, or already ended
                if "Could not find" not in str(exc):
                    break
                time.sleep(1)


def entered_until(stack: Stack, arn: str, state: str, times: int) -> list[dict[str, Any]]:
    """Poll the history until ``state`` has been entered ``times`` times (the execution still RUNNING)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        events = history(stack.sfn, arn)
        if states(events).count(state) >= times:
            return events
        record = describe(stack.sfn, arn)
        assert record.status == "RUNNING", (record.why, states(events)[-10:])
        assert time.monotonic() < deadline, f"{state} not entered {times} times in {DEADLINE_S:g} s"
        time.sleep(1.0)


@pytest.mark.slow
def test_a_second_execution_waits_for_the_owner_then_takes_over_when_it_ends(stack: Stack, holder: str) -> None:
    """While the owner runs, the second execution waits before the gate; once the owner ends, it takes the lock
    over, goes on (the gate rejects it here, so nothing deploys) and releases the lock on its way out."""
    arn = start(stack.sfn, stack.machine_arn, quick(stack, gate=1.0), f"lock-waiter-{uuid.uuid4().hex[:6]}")
    events = entered_until(stack, arn, "WaitForDeployLock", 2)

    order = states(events)
    assert "LookupEndpoint" not in order  # it never read the serving endpoint, let alone changed it
    assert lock_owner(stack) == holder
    assert "DescribeLockOwner" in order and "TakeOverDeployLock" not in order

    stack.sfn.stop_execution(executionArn=holder)  # the owner ends without releasing: a stale lock
    record = wait(stack.sfn, arn, DEADLINE_S)

    assert record.status == "FAILED" and record.error == "GateRejected", record.why
    order = states(history(stack.sfn, arn))
    assert order.index("TakeOverDeployLock") < order.index("LookupEndpoint")
    assert order.count("AcquireDeployLock") >= 3  # refused while the owner ran, then taken over
    assert "ReleaseDeployLockAfterFailure" in order
    assert lock_owner(stack) is None  # released on the way out


def lock_times(events: list[dict[str, Any]]) -> tuple[Any, Any, Any]:
    """(first AcquireDeployLock entered, the successful one's exit, ReleaseDeployLock's exit) of one execution."""
    entered = [
        e["timestamp"]
        for e in events
        if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == "AcquireDeployLock"
    ]
    exited = {
        name: [
            e["timestamp"]
            for e in events
            if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == name
        ]
        for name in ("AcquireDeployLock", "ReleaseDeployLock")
    }
    assert entered and exited["AcquireDeployLock"] and exited["ReleaseDeployLock"]
    return entered[0], exited["AcquireDeployLock"][-1], exited["ReleaseDeployLock"][-1]


@pytest.mark.slow
def test_two_executions_deploy_one_after_the_other(serving: Any, stack: Stack) -> None:
    """Two real runs started together: both deploy, never at the same time; the later one deploys over the first."""
    names = [f"race-{i}-{uuid.uuid4().hex[:6]}" for i in (1, 2)]
    arns = [start(stack.sfn, stack.machine_arn, sfn_event("local_small", stack), name) for name in names]
    records = [wait(stack.sfn, arn, 2 * DEADLINE_S) for arn in arns]

    assert [r.status for r in records] == ["SUCCEEDED", "SUCCEEDED"], [r.why for r in records]
    runs = sorted(
        ((lock_times(history(stack.sfn, arn)), name, arn) for name, arn in zip(names, arns, strict=True)),
        key=lambda run: run[0][1],  # by when each took the lock
    )
    (_, first_held, first_released), _, _ = runs[0]
    assert first_held < first_released
    (second_tried, second_held, _), second_name, second_arn = runs[1]
    assert first_released <= second_held  # the lock passed from one to the other: never both deploying
    # The second reached the deploy stage while the first held the lock exactly when it had to wait for it.
    waited = states(history(stack.sfn, second_arn)).count("WaitForDeployLock")
    assert (second_tried < first_released) == (waited >= 1), (second_tried, first_released, waited)
    endpoint = stack.sm.describe_endpoint(EndpointName=stack.endpoint)
    assert endpoint["EndpointConfigName"] == stack.job_name(second_name)
    assert lock_owner(stack) is None
