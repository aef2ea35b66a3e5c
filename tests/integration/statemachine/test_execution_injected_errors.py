"""Catch edges that only an AWS API error takes: each task's call fails ([[chaos.errors]] at the edge) until its
Retry is spent, and the execution must take that task's Catch.

The injected errors are the APIs' own (botocore's modeled codes, or SageMaker's ThrottlingException), sent to the
interpreter's calls, which are signed with the state machine role's session, as on AWS. ``count`` is the task's
MaxAttempts + 1 (read from the ASL, never typed twice), so the last retry fails too. Each execution trains the quick
2-step job (a resize: the serving model's recipe, so the gate lets it through); the ``serving`` fixture's endpoint
is left serving, with its autoscaling put back where an execution removed it for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.statemachine.sfn_errors import (
    ASL,
    CLEANUP_TAIL,
    NOTHING_TO_CLEAN,
    SAGEMAKER_THROTTLE,
    after,
    calls,
    drop_deploy_lock,
    rule,
    run_with_errors,
)
from tests.integration.statemachine.sfn_helpers import (
    Deployment,
    Stack,
    quick,
    read_deployment,
    resources,
    scalable_targets,
    scaling_policies,
    sfn_event,
)
from tests.integration.statemachine.sfn_probes import attempts, entered

SCALING_CONFLICT = (
    "application-autoscaling",
    "ConcurrentUpdateException",
    "ApplicationAutoScaling.ConcurrentUpdateException",
)

# Exist to take every ASL state and Catch edge; `make test-exhaustive` runs them (they would push CI past 45 min).
pytestmark = pytest.mark.exhaustive


def resize(stack: Stack, serving: Deployment) -> dict[str, Any]:
    """The serving model's own recipe (same seed: the same accuracy, which the gate lets through) on another instance
    type, so the serving autoscaling is removed before UpdateEndpoint."""
    payload = sfn_event("local_small", stack)
    payload["Deploy"]["InstanceType"] = "ml.c5.xlarge" if serving.instance_type != "ml.c5.xlarge" else "ml.m5.large"
    return payload


@pytest.fixture
def scaling_kept(serving: Deployment, stack: Stack) -> Iterator[Deployment]:
    """The serving endpoint; whatever autoscaling an execution removed for real is registered again afterwards."""
    (target,) = scalable_targets(stack)
    (policy,) = scaling_policies(stack)
    yield serving
    keys = {k: target[k] for k in ("ServiceNamespace", "ResourceId", "ScalableDimension")}
    if not scalable_targets(stack):
        stack.autoscaling.register_scalable_target(
            **keys, MinCapacity=target["MinCapacity"], MaxCapacity=target["MaxCapacity"]
        )
    if not scaling_policies(stack):
        stack.autoscaling.put_scaling_policy(
            **keys,
            PolicyName=policy["PolicyName"],
            PolicyType=policy["PolicyType"],
            TargetTrackingScalingPolicyConfiguration=policy["TargetTrackingScalingPolicyConfiguration"],
        )


@pytest.mark.parametrize(
    ("state", "operation", "kind"),
    [
        ("DescribeServingConfig", "DescribeEndpointConfig", SAGEMAKER_THROTTLE),
        ("DescribeServingScaling", "DescribeScalableTargets", SCALING_CONFLICT),
        ("ListServingTags", "ListTags", SAGEMAKER_THROTTLE),
    ],
)
def test_reading_the_serving_endpoint_fails_into_cleanup(
    serving: Deployment, stack: Stack, state: str, operation: str, kind: tuple[str, str, str]
) -> None:
    """The gate cannot read what serves (its config, autoscaling or record): retried, then Cleanup; nothing changes."""
    service, code, error = kind
    name = f"read-{state.lower()}"
    record = run_with_errors(stack, quick(stack, gate=0.0), name, rule(service, operation, code, calls(state, error)))

    assert record.status == "FAILED" and record.error == error, record.why
    assert record.cause is not None and f"Service: {error.split('.')[0]}" in record.cause
    assert attempts(stack, record.arn, ASL[state]["Resource"].rsplit(":", 1)[1]) == calls(state, error)
    assert after(entered(stack, record.arn), state) == [state, *NOTHING_TO_CLEAN]
    assert read_deployment(stack) == serving  # the serving endpoint is untouched
    assert resources(stack.sm, stack.job_name(name)) == (False, False)


def test_a_non_sagemaker_lookup_error_goes_to_cleanup_not_to_the_lookup_check(stack: Stack) -> None:
    """LookupEndpoint catches SageMaker.SageMakerException (the "Could not find endpoint" ValidationException) to tell
    a missing endpoint apart; a modeled SageMaker error has its own name (SageMaker.ResourceNotFoundException), so
    the second catcher (States.ALL) takes it straight to Cleanup."""
    name = "lookup-not-sagemaker"
    record = run_with_errors(
        stack, quick(stack, gate=0.0), name, rule("sagemaker", "DescribeEndpoint", "ResourceNotFound", 1)
    )

    assert record.status == "FAILED" and record.error == "SageMaker.ResourceNotFoundException", record.why
    order = after(entered(stack, record.arn), "LookupEndpoint")
    assert order == ["LookupEndpoint", *NOTHING_TO_CLEAN]  # never EndpointFound
    assert resources(stack.sm, stack.job_name(name)) == (False, False)


def test_scaling_that_cannot_be_deleted_stops_the_resize(scaling_kept: Deployment, stack: Stack) -> None:
    """DeleteScalingPolicy conflicts at every try: Cleanup, the serving endpoint and its autoscaling as they were."""
    record = run_with_errors(
        stack,
        resize(stack, scaling_kept),
        "resize-policy-conflict",
        rule(
            *SCALING_CONFLICT[:1],
            "DeleteScalingPolicy",
            SCALING_CONFLICT[1],
            calls("DeleteScalingPolicy", SCALING_CONFLICT[2]),
        ),
    )

    assert record.status == "FAILED" and record.error == SCALING_CONFLICT[2], record.why
    assert attempts(stack, record.arn, "deleteScalingPolicy") == calls("DeleteScalingPolicy", SCALING_CONFLICT[2])
    order = after(entered(stack, record.arn), "DeleteScalingPolicy")
    assert order[:5] == ["DeleteScalingPolicy", *CLEANUP_TAIL]
    assert "DeregisterScalableTarget" not in order
    assert len(scalable_targets(stack)) == 1 and len(scaling_policies(stack)) == 1
    assert read_deployment(stack) == scaling_kept


def test_a_target_that_cannot_be_deregistered_stops_the_resize(scaling_kept: Deployment, stack: Stack) -> None:
    """The policy is deleted, the deregistration conflicts at every try: Cleanup; nothing was deregistered, so no
    restore is attempted (RestoreScalingNeeded is false) and the endpoint keeps serving its old config."""
    record = run_with_errors(
        stack,
        resize(stack, scaling_kept),
        "resize-target-conflict",
        rule(
            *SCALING_CONFLICT[:1],
            "DeregisterScalableTarget",
            SCALING_CONFLICT[1],
            calls("DeregisterScalableTarget", SCALING_CONFLICT[2]),
        ),
    )

    assert record.status == "FAILED" and record.error == SCALING_CONFLICT[2], record.why
    order = after(entered(stack, record.arn), "DeregisterScalableTarget")
    assert order[:6] == ["DeregisterScalableTarget", *CLEANUP_TAIL, "RestoreScalingNeeded"]
    assert "RestoreServingScaling" not in order and "UpdateEndpoint" not in order
    assert len(scalable_targets(stack)) == 1 and scaling_policies(stack) == []  # the policy went, for real
    assert read_deployment(stack) == scaling_kept


def test_scaling_already_gone_goes_on_to_the_update(scaling_kept: Deployment, stack: Stack) -> None:
    """Both deletes answer ObjectNotFoundException (someone removed the autoscaling first): each is caught and the
    resize goes on to UpdateEndpoint, whose own throttle then ends it in Cleanup with no restore to make."""
    record = run_with_errors(
        stack,
        resize(stack, scaling_kept),
        "resize-scaling-gone",
        rule("application-autoscaling", "DeleteScalingPolicy", "ObjectNotFoundException", 1),
        rule("application-autoscaling", "DeregisterScalableTarget", "ObjectNotFoundException", 1),
        rule("sagemaker", "UpdateEndpoint", "ThrottlingException", calls("UpdateEndpoint", SAGEMAKER_THROTTLE[2])),
    )

    assert record.status == "FAILED" and record.error == "SageMaker.SageMakerException", record.why
    order = after(entered(stack, record.arn), "DeleteScalingPolicy")
    assert order[:8] == [
        "DeleteScalingPolicy", "DeregisterScalableTarget", "UpdateEndpoint", *CLEANUP_TAIL, "RestoreScalingNeeded",
    ]  # fmt: skip
    assert attempts(stack, record.arn, "deleteScalingPolicy") == attempts(stack, record.arn, "deregisterScalableTarget")
    assert "RestoreServingScaling" not in order
    assert len(scalable_targets(stack)) == 1 and len(scaling_policies(stack)) == 1  # never really deleted
    assert read_deployment(stack) == scaling_kept


@pytest.mark.parametrize(
    ("operation", "failed_state"),
    [("RegisterScalableTarget", "RestoreServingScaling"), ("PutScalingPolicy", "RestoreServingPolicy")],
)
def test_a_failed_restore_of_the_serving_autoscaling_still_fails_the_execution(
    scaling_kept: Deployment, stack: Stack, operation: str, failed_state: str
) -> None:
    """The resize removed the autoscaling for real, then UpdateEndpoint is throttled out: Cleanup puts the serving
    endpoint's autoscaling back, and when that call conflicts at every try too, it gives up (ConfigStillReferenced)
    and the execution fails with UpdateEndpoint's error."""
    name = f"restore-{operation.lower()}"
    record = run_with_errors(
        stack,
        resize(stack, scaling_kept),
        name,
        rule("sagemaker", "UpdateEndpoint", "ThrottlingException", calls("UpdateEndpoint", SAGEMAKER_THROTTLE[2])),
        rule(
            "application-autoscaling", operation, "ConcurrentUpdateException", calls(failed_state, SCALING_CONFLICT[2])
        ),
    )

    assert record.status == "FAILED" and record.error == "SageMaker.SageMakerException", record.why
    order = after(entered(stack, record.arn), "UpdateEndpoint")
    restore = ["RestoreScalingNeeded", "SelectServingTarget", "RestoreServingScaling"]
    assert order[: 5 + len(restore)] == ["UpdateEndpoint", *CLEANUP_TAIL, *restore]
    assert after(order, failed_state)[:2] == [failed_state, "ConfigStillReferenced"]
    resource = ASL[failed_state]["Resource"].rsplit(":", 1)[1]
    assert attempts(stack, record.arn, resource) == calls(failed_state, SCALING_CONFLICT[2])
    assert read_deployment(stack) == scaling_kept  # the old fleet serves; the new config and model are deleted
    assert resources(stack.sm, stack.job_name(name)) == (False, False)


@pytest.mark.parametrize(
    ("state", "operation"),
    [("RegisterScalableTarget", "RegisterScalableTarget"), ("PutScalingPolicy", "PutScalingPolicy")],
)
def test_autoscaling_refused_after_the_new_endpoint_serves_fails_into_cleanup(
    fresh: Stack, state: str, operation: str
) -> None:
    """The new endpoint is InService, then its autoscaling conflicts at every try: Cleanup, which keeps the config
    and the model the endpoint runs on (ConfigStillReferenced)."""
    stack = fresh
    name = f"new-{state.lower()}"
    record = run_with_errors(
        stack,
        quick(stack, gate=0.0),
        name,
        rule(*SCALING_CONFLICT[:1], operation, SCALING_CONFLICT[1], calls(state, SCALING_CONFLICT[2])),
    )

    assert record.status == "FAILED" and record.error == SCALING_CONFLICT[2], record.why
    assert attempts(stack, record.arn, operation[0].lower() + operation[1:]) == calls(state, SCALING_CONFLICT[2])
    order = after(entered(stack, record.arn), state)
    assert order[:7] == [state, *CLEANUP_TAIL, "RestoreScalingNeeded", "ConfigStillReferenced"]
    assert "DeleteEndpointConfig" not in order and order[-1] == "Failed"
    endpoint = stack.sm.describe_endpoint(EndpointName=stack.endpoint)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", stack.job_name(name))
    assert resources(stack.sm, stack.job_name(name)) == (True, True)


def test_an_unreadable_training_status_leaves_the_job_running_and_fails(stack: Stack) -> None:
    """DescribeTrainingJob answers a modeled SageMaker error (not a throttle, not the generic SageMakerException): the
    second catcher (States.ALL) takes it to TrainingStatusUnreadable, which fails the execution with that error."""
    name = "training-unreadable"
    record = run_with_errors(
        stack, quick(stack, gate=0.0), name, rule("sagemaker", "DescribeTrainingJob", "ResourceNotFound", 1)
    )

    assert record.status == "FAILED" and record.error == "TrainingStatusUnreadable", record.why
    assert record.cause is not None and "SageMaker.ResourceNotFoundException" in record.cause
    order = after(entered(stack, record.arn), "DescribeTraining")
    assert order[:3] == ["DescribeTraining", "TrainingStatusUnreadable", "CleanupDeployment"]
    assert order[-1] == "Failed" and "AcquireDeployLock" not in order


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("ConditionalCheckFailedException", "DynamoDB.ConditionalCheckFailedException"),  # someone took it over
        ("ResourceNotFoundException", "DynamoDB.ResourceNotFoundException"),  # anything else
    ],
)
def test_a_deploy_lock_that_cannot_be_released_still_fails_with_the_first_error(
    stack: Stack, code: str, error: str
) -> None:
    """The lookup fails (as above), then releasing the deploy lock fails too: either catcher of
    ReleaseDeployLockAfterFailure ends the execution with the lookup's error, not the release's."""
    name = f"release-{code.lower()}"
    try:
        record = run_with_errors(
            stack,
            quick(stack, gate=0.0),
            name,
            rule("sagemaker", "DescribeEndpoint", "ResourceNotFound", 1),
            rule("dynamodb", "DeleteItem", code, calls("ReleaseDeployLockAfterFailure", error)),
        )
    finally:
        drop_deploy_lock(stack)

    assert record.status == "FAILED" and record.error == "SageMaker.ResourceNotFoundException", record.why
    assert attempts(stack, record.arn, "deleteItem") == 1  # neither code is retried
    assert after(entered(stack, record.arn), "ReleaseDeployLockAfterFailure") == [
        "ReleaseDeployLockAfterFailure",
        "Failed",
    ]
