"""Capacity is kept on every update (issue 8, defect 1).

UpdateEndpoint does not retain variant properties: the green fleet starts with the new endpoint config's
InitialInstanceCount. An endpoint that autoscaling (or an operator) scaled out must not shrink to the input's count
on every retrain. The ASL reads DescribeEndpoint's CurrentInstanceCount and the scalable target's bounds and starts
the green fleet at the largest of them; autoscaling ends registered with the larger of the old and the input bounds.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.integration.local_aws_fixtures import wait_endpoint
from tests.integration.statemachine.sfn_helpers import (
    TIMEOUT,
    Deployment,
    Stack,
    describe,
    history,
    scalable_targets,
    sfn_event,
    start,
    states,
    wait,
)


def instance_count(stack: Stack) -> int:
    """The endpoint's serving instances, all variants (DescribeEndpoint CurrentInstanceCount)."""
    endpoint = stack.sm.describe_endpoint(EndpointName=stack.endpoint)
    return sum(v.get("CurrentInstanceCount", 0) for v in endpoint.get("ProductionVariants", []))


def scale_out(stack: Stack, count: int, minimum: int, maximum: int) -> None:
    """What an operator or autoscaling does between two deployments: new bounds, more instances."""
    stack.autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId=stack.resource_id,
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=minimum,
        MaxCapacity=maximum,
    )
    stack.sm.update_endpoint_weights_and_capacities(
        EndpointName=stack.endpoint,
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": count}],
    )
    described = wait_endpoint(stack.sm, stack.endpoint)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    assert instance_count(stack) == count


@pytest.mark.slow
def test_update_keeps_a_scaled_out_fleet_and_its_scaling_bounds(serving: Deployment, stack: Stack) -> None:
    """Scaled out to 3 (target 2..4), a deploy asking for 1 instance (1..2) keeps >= 3 throughout and 2..4 after."""
    scale_out(stack, count=3, minimum=2, maximum=4)
    payload = sfn_event("local_small", stack)
    payload["Deploy"].update(InstanceType=serving.instance_type, InitialInstanceCount=1, MinCapacity=1, MaxCapacity=2)

    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:  # DescribeEndpoint all through the execution, as a client of the endpoint would see it
        while not done.is_set():
            seen.append(instance_count(stack))
            time.sleep(0.25)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        arn = start(stack.sfn, stack.machine_arn, payload, "capacity-kept")
        record = wait(stack.sfn, arn, TIMEOUT)
    finally:
        done.set()
        watcher.join(5)

    assert record.status == "SUCCEEDED", record.why
    name = stack.job_name("capacity-kept")
    endpoint = stack.sm.describe_endpoint(EndpointName=stack.endpoint)
    assert endpoint["EndpointConfigName"] == name
    config = stack.sm.describe_endpoint_config(EndpointConfigName=name)
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 3
    assert seen and min(seen) >= 3, seen
    assert instance_count(stack) == 3
    (target,) = scalable_targets(stack)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 4)
    order = states(history(stack.sfn, arn))
    assert {"KeepServingCount", "KeepServingMin", "KeepServingMax"} <= set(order)
    assert describe(stack.sfn, arn).output is not None


@pytest.mark.slow
def test_a_new_endpoint_starts_at_the_minimum_capacity(fresh: Stack) -> None:
    """A first deploy asking for 1 instance with MinCapacity 2 starts 2: never below the scaling minimum."""
    payload = sfn_event("local_small", fresh)
    payload["Deploy"].update(InitialInstanceCount=1, MinCapacity=2, MaxCapacity=2)
    arn = start(fresh.sfn, fresh.machine_arn, payload, "capacity-min")
    record = wait(fresh.sfn, arn, TIMEOUT)

    assert record.status == "SUCCEEDED", record.why
    config = fresh.sm.describe_endpoint_config(EndpointConfigName=fresh.job_name("capacity-min"))
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 2
    assert instance_count(fresh) == 2
    (target,) = scalable_targets(fresh)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 2)
    assert "RaiseCountToMin" in states(history(fresh.sfn, arn))
