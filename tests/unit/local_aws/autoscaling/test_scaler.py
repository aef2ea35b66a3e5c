"""The scaling loop's decisions reach SageMaker as Application Auto Scaling's own call, and only when they should.

moto's backends are driven in-process (what the edge would store), and SageMaker is a recording stand-in with
SageMaker's response shapes, so each test sees exactly which UpdateEndpointWeightsAndCapacities calls were made.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.applicationautoscaling.models import applicationautoscaling_backends
from moto.cloudwatch.models import cloudwatch_backends

from local_aws.autoscaling import activities
from local_aws.autoscaling.scaler import TargetTracker
from local_aws.constants import ACCOUNT_ID, REGION

SCALE = 60.0  # one-minute periods last one real second
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


class RecordingSageMaker:
    """DescribeEndpoint / UpdateEndpointWeightsAndCapacities with SageMaker's shapes; records the updates."""

    def __init__(self, endpoint: str, count: int, status: str = "InService", fail: bool = False) -> None:
        self.endpoint, self.count, self.status, self.fail = endpoint, count, status, fail
        self.updates: list[dict[str, Any]] = []

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        return {
            "EndpointName": EndpointName,
            "EndpointStatus": self.status,
            "ProductionVariants": [
                {"VariantName": "AllTraffic", "CurrentInstanceCount": self.count, "DesiredInstanceCount": self.count}
            ],
        }

    def update_endpoint_weights_and_capacities(self, **params: Any) -> dict[str, Any]:
        self.updates.append(params)
        if self.fail:
            error = {"Error": {"Code": "ValidationException", "Message": "Cannot update in-progress endpoint"}}
            raise ClientError(error, "UpdateEndpointWeightsAndCapacities")
        return {"EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:endpoint/{self.endpoint}"}


@pytest.fixture(autouse=True)
def _fast_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_AWS_TIME_SCALE", str(SCALE))


@pytest.fixture
def endpoint() -> Iterator[str]:
    """A registered variant (min 1, max 3) with the ASL's target tracking policy; removed afterwards."""
    name = f"ep-{uuid.uuid4().hex[:8]}"
    aas = applicationautoscaling_backends[ACCOUNT_ID][REGION]
    resource = f"endpoint/{name}/variant/AllTraffic"
    aas.register_scalable_target("sagemaker", resource, DIMENSION, 1, 3, "", None)  # type: ignore[arg-type]
    config = {
        "TargetValue": 100.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "ScaleInCooldown": 300,
        "ScaleOutCooldown": 60,
    }
    aas.put_scaling_policy(f"{name}-ipi", "sagemaker", resource, DIMENSION, config, "TargetTrackingScaling")
    yield name
    if aas._scalable_target_exists(resource, DIMENSION):
        aas.deregister_scalable_target("sagemaker", resource, DIMENSION)
    for key in [k for k, p in aas.policies.items() if p.resource_id == resource]:
        del aas.policies[key]


def invocations_per_instance(endpoint: str, values: list[float], now: float, scale: float = SCALE) -> None:
    """``values`` for the last len(values) complete one-minute periods before ``now`` (oldest first)."""
    period = 60.0 / scale
    end = math.floor(now / period) * period
    data = [
        {
            "MetricName": "InvocationsPerInstance",
            "Value": value,
            "Dimensions": [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
            "Timestamp": datetime.fromtimestamp(end - (len(values) - i - 0.5) * period, UTC),
        }
        for i, value in enumerate(values)
    ]
    cloudwatch_backends[ACCOUNT_ID][REGION].put_metric_data("AWS/SageMaker", data)


def test_three_high_minutes_scale_out_through_sagemaker(endpoint: str) -> None:
    now = time.time()
    invocations_per_instance(endpoint, [250.0, 250.0, 250.0], now)
    sagemaker = RecordingSageMaker(endpoint, count=1)
    assert TargetTracker(sagemaker).scale_once(now) == 1
    assert sagemaker.updates == [
        {
            "EndpointName": endpoint,
            "DesiredWeightsAndCapacities": [{"VariantName": "AllTraffic", "DesiredInstanceCount": 3}],
        }
    ]
    (activity,) = activities.listed("sagemaker", f"endpoint/{endpoint}/variant/AllTraffic")
    assert activity["StatusCode"] == "Successful"
    assert activity["Description"] == "Setting desired instance count to 3."
    assert activity["Cause"].startswith(
        f"monitor alarm TargetTracking-endpoint/{endpoint}/variant/AllTraffic-AlarmHigh-"
    )
    assert activity["Cause"].endswith(f"in state ALARM triggered policy {endpoint}-ipi")


def test_scale_out_cooldown_holds_the_next_scale_out(endpoint: str) -> None:
    now = time.time()
    invocations_per_instance(endpoint, [250.0, 250.0, 250.0], now)
    tracker = TargetTracker(RecordingSageMaker(endpoint, count=1))
    assert tracker.scale_once(now) == 1
    tracker.sagemaker = RecordingSageMaker(endpoint, count=2)  # still above target per instance
    assert tracker.scale_once(now) == 0  # ScaleOutCooldown is 60 AWS seconds = 1 real second
    time.sleep(1.1)
    assert tracker.scale_once(now) == 1


def test_an_updating_endpoint_is_left_alone(endpoint: str) -> None:
    now = time.time()
    invocations_per_instance(endpoint, [250.0, 250.0, 250.0], now)
    sagemaker = RecordingSageMaker(endpoint, count=1, status="Updating")
    assert TargetTracker(sagemaker).scale_once(now) == 0
    assert sagemaker.updates == []


def test_suspended_scale_out_and_deregistered_targets_do_not_scale(endpoint: str) -> None:
    now = time.time()
    invocations_per_instance(endpoint, [250.0, 250.0, 250.0], now)
    aas = applicationautoscaling_backends[ACCOUNT_ID][REGION]
    resource = f"endpoint/{endpoint}/variant/AllTraffic"
    aas.register_scalable_target("sagemaker", resource, DIMENSION, None, None, "", {"DynamicScalingOutSuspended": True})  # type: ignore[arg-type]
    sagemaker = RecordingSageMaker(endpoint, count=1)
    assert TargetTracker(sagemaker).scale_once(now) == 0
    aas.register_scalable_target(
        "sagemaker", resource, DIMENSION, None, None, "", {"DynamicScalingOutSuspended": False}
    )  # type: ignore[arg-type]
    aas.deregister_scalable_target("sagemaker", resource, DIMENSION)
    assert TargetTracker(sagemaker).scale_once(now) == 0
    assert sagemaker.updates == []


def test_a_policy_for_a_misspelt_variant_never_scales_the_real_one(endpoint: str) -> None:
    now = time.time()
    invocations_per_instance(endpoint, [250.0, 250.0, 250.0], now)
    aas = applicationautoscaling_backends[ACCOUNT_ID][REGION]
    for key in [k for k, p in aas.policies.items() if p.resource_id == f"endpoint/{endpoint}/variant/AllTraffic"]:
        del aas.policies[key]
    wrong = f"endpoint/{endpoint}/variant/Alltraffic"
    aas.register_scalable_target("sagemaker", wrong, DIMENSION, 1, 3, "", None)  # type: ignore[arg-type]
    config = {
        "TargetValue": 100.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
    }
    aas.put_scaling_policy("wrong", "sagemaker", wrong, DIMENSION, config, "TargetTrackingScaling")
    try:
        sagemaker = RecordingSageMaker(endpoint, count=1)
        assert TargetTracker(sagemaker).scale_once(now) == 0
        assert sagemaker.updates == []
    finally:
        aas.deregister_scalable_target("sagemaker", wrong, DIMENSION)
        for key in [k for k, p in aas.policies.items() if p.resource_id == wrong]:
            del aas.policies[key]


def test_a_refused_update_is_a_failed_activity(endpoint: str) -> None:
    now = time.time()
    invocations_per_instance(endpoint, [250.0, 250.0, 250.0], now)
    assert TargetTracker(RecordingSageMaker(endpoint, count=1, fail=True)).scale_once(now) == 0
    (activity,) = activities.listed("sagemaker", f"endpoint/{endpoint}/variant/AllTraffic")
    assert activity["StatusCode"] == "Failed"
    assert "Cannot update in-progress endpoint" in activity["StatusMessage"]


def test_cooldown_is_read_at_the_current_time_scale(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Scaled out while the clock ran 3600x, then checked at 60x: 1.1 real seconds later are 66 AWS seconds, past
    # the 60-second ScaleOutCooldown (a stamp kept in 3600x AWS seconds would hold it for hours).
    monkeypatch.setenv("LOCAL_AWS_TIME_SCALE", "3600")
    now = time.time()
    invocations_per_instance(endpoint, [250.0, 250.0, 250.0], now, scale=3600.0)
    tracker = TargetTracker(RecordingSageMaker(endpoint, count=1))
    assert tracker.scale_once(now) == 1
    monkeypatch.setenv("LOCAL_AWS_TIME_SCALE", str(SCALE))
    tracker.sagemaker = RecordingSageMaker(endpoint, count=2)
    later = time.time()
    invocations_per_instance(endpoint, [250.0, 250.0, 250.0], later)
    assert tracker.scale_once(later) == 0  # a few AWS seconds after the scale out: cooling down
    time.sleep(1.1)
    assert tracker.scale_once(later) == 1
