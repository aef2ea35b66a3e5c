"""The Catch edges no other execution test takes: quotas after training, unreadable tuning and endpoint statuses, and
every way the deploy lock's DynamoDB and Step Functions calls can fail (issue 8, "every state and Catch edge").

Each error is the API's own, injected at the edge (``[[chaos.errors]]``, local_aws/injected_errors.py) into the
calls the interpreter makes with the state machine role's session, as on AWS. Where a Catch handles the error and
the execution goes on (a throttled lock read waits and tries again), one execution takes several edges; where it
ends the execution, each edge gets its own. Every execution trains the quick 2-step job first (the lock is taken
after training), so they run in ``make test-exhaustive``, with the ASL coverage gate.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_aws.clock import ENV_TIME_SCALE
from tests.integration.statemachine.sfn_errors import (
    SAGEMAKER_THROTTLE,
    STATE_MACHINE_CALLS,
    after,
    calls,
    drop_deploy_lock,
    lock_table,
    rule,
    run_with_errors,
)
from tests.integration.statemachine.sfn_helpers import (
    Stack,
    describe,
    quick,
    resources,
    start,
    wait,
)
from tests.integration.statemachine.sfn_probes import attempts, entered, small_tuning, tuning_job_of, until

pytestmark = pytest.mark.exhaustive

QUOTA = "ResourceLimitExceeded"
# AWS seconds per real second while a quota's backoff runs (60 s doubling to 600 s, five times); the polls are set
# to 600 AWS seconds, so each still takes one real second and the quick training spends a handful of them.
QUOTA_TIME_SCALE = "600"
QUOTA_POLLING = {"IntervalSeconds": 600, "MaxIntervalSeconds": 600, "MaxAttempts": 200}
DDB_THROTTLE = "ProvisionedThroughputExceededException"


def ghost_owner(stack: Stack) -> str:
    """The ARN of an execution of the pipeline that does not exist (DescribeExecution: ExecutionDoesNotExist)."""
    return f"{stack.machine_arn.replace(':stateMachine:', ':execution:')}:ghost-{uuid.uuid4().hex[:6]}"


def hold_lock(stack: Stack, owner: str) -> None:
    """Write the endpoint's lock item as ``owner``'s AcquireDeployLock would have."""
    stack.aws.client("dynamodb").put_item(
        TableName=lock_table(stack),
        Item={"LockName": {"S": stack.endpoint}, "Owner": {"S": owner}, "AcquiredAt": {"S": "2026-01-01T00:00:00Z"}},
    )


@pytest.fixture
def lock_cleared(stack: Stack) -> Iterator[Stack]:
    """The stack; whatever lock item the test or its execution left is deleted afterwards."""
    yield stack
    drop_deploy_lock(stack)


@pytest.fixture
def quota_clock(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """AWS time at 600x, and the polling that keeps one poll at one real second."""
    monkeypatch.setenv(ENV_TIME_SCALE, QUOTA_TIME_SCALE)
    return QUOTA_POLLING


@pytest.mark.parametrize(
    ("state", "operation", "instance_type"),
    [
        ("CreateModel", "CreateModel", "ml.m5.large"),
        ("CreateEndpointConfig", "CreateEndpointConfig", "ml.m5.large"),
        ("CreateEndpointConfigLocalStorage", "CreateEndpointConfig", "ml.m5d.large"),  # an NVMe type: no KMS key
    ],
)
def test_a_quota_after_training_is_retried_then_fails_naming_it(
    fresh: Stack, quota_clock: dict[str, Any], state: str, operation: str, instance_type: str
) -> None:
    """ResourceLimitExceeded on every try of a deploy step: 1 + 5 attempts, then QuotaExceeded and Cleanup."""
    stack = fresh
    payload = quick(stack, gate=0.0)
    payload["Polling"] = quota_clock
    payload["Deploy"] = {**payload["Deploy"], "InstanceType": instance_type}
    name = f"quota-{state.lower()}-{uuid.uuid4().hex[:4]}"
    tries = calls(state, f"SageMaker.{QUOTA}Exception")
    record = run_with_errors(stack, payload, name, rule("sagemaker", operation, QUOTA, tries))

    assert record.status == "FAILED" and record.error == "QuotaExceeded", record.why
    assert record.cause is not None and "after 5 retries with backoff" in record.cause
    assert attempts(stack, record.arn, operation[0].lower() + operation[1:]) == tries == 6
    order = after(entered(stack, record.arn), state)
    assert order[:3] == [state, "QuotaExceeded", "Cleanup"] and order[-1] == "Failed"
    assert not resources(stack.sm, stack.job_name(name))[1]  # no endpoint config is left behind


def test_a_tuning_quota_is_retried_then_fails_naming_it(stack: Stack, quota_clock: dict[str, Any]) -> None:
    """CreateHyperParameterTuningJob refused on a quota at every try: QuotaExceeded; nothing was trained."""
    payload = small_tuning(stack)
    payload["Polling"] = quota_clock
    tries = calls("CreateTuningJob", f"SageMaker.{QUOTA}Exception")
    name = f"quota-tuning-{uuid.uuid4().hex[:4]}"
    record = run_with_errors(stack, payload, name, rule("sagemaker", "CreateHyperParameterTuningJob", QUOTA, tries))

    assert record.status == "FAILED" and record.error == "QuotaExceeded", record.why
    assert attempts(stack, record.arn, "createHyperParameterTuningJob") == tries
    order = after(entered(stack, record.arn), "CreateTuningJob")
    assert order[:3] == ["CreateTuningJob", "QuotaExceeded", "Cleanup"] and "CreateTrainingJob" not in order


def test_a_refused_create_endpoint_goes_to_cleanup(fresh: Stack) -> None:
    """CreateEndpoint answers a non-quota error (retried as SageMaker.SageMakerException, 1 + 3 tries): the second
    catcher (States.ALL) takes it to Cleanup, which deletes the new config and model."""
    stack = fresh
    name = f"create-endpoint-{uuid.uuid4().hex[:4]}"
    tries = calls("CreateEndpoint", SAGEMAKER_THROTTLE[2])
    record = run_with_errors(
        stack, quick(stack, gate=0.0), name, rule("sagemaker", "CreateEndpoint", "ValidationException", tries)
    )

    assert record.status == "FAILED" and record.error == SAGEMAKER_THROTTLE[2], record.why
    assert attempts(stack, record.arn, "createEndpoint") == tries
    order = after(entered(stack, record.arn), "CreateEndpoint")
    assert order[:2] == ["CreateEndpoint", "Cleanup"] and "QuotaExceeded" not in order
    assert "DeleteEndpointConfig" in order and "DeleteModel" in order
    assert resources(stack.sm, stack.job_name(name)) == (False, False)


@pytest.mark.parametrize(
    ("code", "first"),
    [
        ("ValidationException", ["DescribeTuning", "TuningReadFailed", "TuningStatusUnreadable"]),  # SageMakerException
        ("ResourceNotFound", ["DescribeTuning", "TuningStatusUnreadable"]),  # modeled: States.ALL
    ],
)
def test_an_unreadable_tuning_status_leaves_the_tuning_job_running(stack: Stack, code: str, first: list[str]) -> None:
    """DescribeHyperParameterTuningJob fails with a non-throttle error: TuningStatusUnreadable, naming the error;
    the tuning job is not stopped (it ends at its own limits, as the cause says)."""
    name = f"tuning-unreadable-{uuid.uuid4().hex[:4]}"
    record = run_with_errors(
        stack, small_tuning(stack), name, rule("sagemaker", "DescribeHyperParameterTuningJob", code, 1)
    )
    tuning = tuning_job_of(stack, record.arn)
    try:
        assert record.status == "FAILED" and record.error == "TuningStatusUnreadable", record.why
        assert record.cause is not None and tuning in record.cause and "is left running" in record.cause
        order = after(entered(stack, record.arn), "DescribeTuning")
        assert order[: len(first) + 1] == [*first, "CleanupTraining"]
        assert "StopTuningJob" not in order and "CreateTrainingJob" not in order
    finally:  # CPU: its jobs are not needed once the test has seen it left running
        try:
            stack.sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning)
        except ClientError as exc:  # it may have ended on its own already
            assert "ValidationException" in str(exc), exc


@pytest.mark.parametrize(
    ("code", "first"),
    [
        ("ValidationException", ["DescribeEndpoint", "EndpointReadFailed", "EndpointStatusUnreadable", "Cleanup"]),
        ("ResourceNotFound", ["DescribeEndpoint", "EndpointStatusUnreadable", "Cleanup"]),
    ],
)
def test_an_unreadable_endpoint_status_fails_and_keeps_what_it_may_reference(
    fresh: Stack, code: str, first: list[str]
) -> None:
    """The new endpoint's first status read fails (``after = 1``: the lookup's DescribeEndpoint passes): the
    execution fails EndpointStatusUnreadable and deletes nothing the endpoint may still reference."""
    stack = fresh
    name = f"endpoint-unreadable-{uuid.uuid4().hex[:4]}"
    record = run_with_errors(
        stack, quick(stack, gate=0.0), name, rule("sagemaker", "DescribeEndpoint", code, 1, after=1)
    )

    assert record.status == "FAILED" and record.error == "EndpointStatusUnreadable", record.why
    assert record.cause is not None and stack.endpoint in record.cause
    order = after(entered(stack, record.arn), "DescribeEndpoint")
    assert order[: len(first)] == first
    assert "DeleteModel" not in order and resources(stack.sm, stack.job_name(name))[1]


def test_throttled_lock_calls_wait_and_a_lock_whose_owner_is_gone_is_taken_over(lock_cleared: Stack) -> None:
    """The lock is held by an execution that does not exist. The first PutItem is throttled (wait), the GetItem of
    the held lock is throttled (wait), the owner's DescribeExecution is throttled (wait, as if it ran); then the
    owner is found gone, the lock is taken over and the run goes on to its gate."""
    stack = lock_cleared
    owner = ghost_owner(stack)
    hold_lock(stack, owner)
    record = run_with_errors(
        stack,
        quick(stack, gate=1.0),
        f"lock-throttled-{uuid.uuid4().hex[:4]}",
        rule("dynamodb", "PutItem", DDB_THROTTLE, 1),
        rule("dynamodb", "GetItem", DDB_THROTTLE, 1),
        # The test's own DescribeExecution polls of this run must not spend it.
        rule("stepfunctions", "DescribeExecution", "ThrottlingException", 1, principal=STATE_MACHINE_CALLS),
    )

    assert record.status == "FAILED" and record.error == "GateRejected", record.why
    order = after(entered(stack, record.arn), "AcquireDeployLock")
    assert order[:2] == ["AcquireDeployLock", "DeployLockHeld"]  # throttled: no owner read yet, so wait
    owner_checks = [i for i, s in enumerate(order) if s == "DescribeLockOwner"]
    assert len(owner_checks) == 2
    assert order[owner_checks[0] + 1] == "LockOwnerRunning"  # throttled: treated as still running
    assert order[owner_checks[1] + 1] == "TakeOverDeployLock"  # ExecutionDoesNotExist
    assert order.count("ReadDeployLock") == 3 and "LookupEndpoint" in order
    assert attempts(stack, record.arn, "getItem") == 3


@pytest.mark.parametrize(
    ("state", "service", "operation", "code", "error"),
    [
        ("AcquireDeployLock", "dynamodb", "PutItem", "ResourceNotFoundException", "DynamoDB.ResourceNotFoundException"),
        ("ReadDeployLock", "dynamodb", "GetItem", "ResourceNotFoundException", "DynamoDB.ResourceNotFoundException"),
        ("DescribeLockOwner", "stepfunctions", "DescribeExecution", "InvalidArn", "Sfn.InvalidArnException"),
    ],
)
def test_a_lock_call_that_fails_otherwise_goes_to_cleanup(
    lock_cleared: Stack, state: str, service: str, operation: str, code: str, error: str
) -> None:
    """Any other error of a lock call (the table is gone, an ARN is refused) ends the run in Cleanup, before it read
    or changed the serving endpoint."""
    stack = lock_cleared
    hold_lock(stack, ghost_owner(stack))  # PutItem is refused, so ReadDeployLock and DescribeLockOwner run
    name = f"lock-{state.lower()}-{uuid.uuid4().hex[:4]}"
    failure = rule(service, operation, code, 1, principal=STATE_MACHINE_CALLS)
    record = run_with_errors(stack, quick(stack, gate=1.0), name, failure)

    assert record.status == "FAILED" and record.error == error, record.why
    order = after(entered(stack, record.arn), state)
    assert order[:2] == [state, "Cleanup"] and order[-1] == "Failed"
    assert "LookupEndpoint" not in order


@pytest.fixture
def idle_owner(lock_cleared: Stack) -> Iterator[str]:
    """A RUNNING execution of the pipeline that owns the lock and costs nothing while it does: its quick job trains,
    then it waits an hour before its first status read."""
    stack = lock_cleared
    payload = quick(stack, gate=1.0)
    payload["Polling"] = {"IntervalSeconds": 3600, "MaxIntervalSeconds": 3600, "MaxAttempts": 10}
    arn = start(stack.sfn, stack.machine_arn, payload, f"lock-idle-owner-{uuid.uuid4().hex[:6]}")
    until(lambda: "WaitForTraining" in entered(stack, arn))
    hold_lock(stack, arn)
    yield arn
    if describe(stack.sfn, arn).status == "RUNNING":
        stack.sfn.stop_execution(executionArn=arn)


def test_an_owner_still_running_when_the_budget_is_spent_fails_endpoint_busy(
    lock_cleared: Stack, idle_owner: str
) -> None:
    """The owner stays RUNNING: the execution waits on its poll budget and fails EndpointBusy, naming the owner,
    having read nothing of the serving endpoint."""
    stack = lock_cleared
    payload = quick(stack, gate=1.0)
    payload["Polling"] = {"IntervalSeconds": 1, "MaxIntervalSeconds": 1, "MaxAttempts": 40}
    arn = start(stack.sfn, stack.machine_arn, payload, f"lock-busy-{uuid.uuid4().hex[:4]}")
    record = wait(stack.sfn, arn)

    assert record.status == "FAILED" and record.error == "EndpointBusy", record.why
    assert record.cause is not None and idle_owner in record.cause and "Polling.MaxAttempts=40" in record.cause
    order = after(entered(stack, arn), "AcquireDeployLock")
    assert order.count("LockOwnerRunning") >= 2 and "TakeOverDeployLock" not in order
    assert "LookupEndpoint" not in order and order[order.index("EndpointBusy") + 1] == "Cleanup"
    assert describe(stack.sfn, idle_owner).status == "RUNNING"


@pytest.mark.parametrize(
    ("code", "edge"),
    [("ConditionalCheckFailedException", "someone took it over"), ("ResourceNotFoundException", "anything else")],
)
def test_a_lock_that_cannot_be_released_after_deploying_still_succeeds(
    fresh: Stack, lock_cleared: Stack, code: str, edge: str
) -> None:
    """The endpoint serves the new model; releasing the lock fails ({edge}): either catcher goes to Deployed, so
    the deployment is reported, not failed (the lock item is left for the next owner to take over)."""
    stack = lock_cleared
    name = f"release-deployed-{code[:8].lower()}-{uuid.uuid4().hex[:4]}"
    record = run_with_errors(stack, quick(stack, gate=0.0), name, rule("dynamodb", "DeleteItem", code, 1))

    assert record.status == "SUCCEEDED", (edge, record.why)
    assert after(entered(stack, record.arn), "ReleaseDeployLock") == ["ReleaseDeployLock", "Deployed"]
    assert attempts(stack, record.arn, "deleteItem") == 1  # neither code is retried
    endpoint = stack.sm.describe_endpoint(EndpointName=stack.endpoint)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", stack.job_name(name))
