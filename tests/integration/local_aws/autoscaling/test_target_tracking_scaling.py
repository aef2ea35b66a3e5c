"""Application Auto Scaling's target tracking really resizes a local endpoint, over real boto3 calls.

The endpoint serves a real (untrained) model; the policy is the one the ASL's PutScalingPolicy state puts. Its
metric, AWS/SageMaker InvocationsPerInstance, is written with PutMetricData here (the values a busy or idle
endpoint would publish), and time runs 60x so one-minute periods last a real second. The scaler's
UpdateEndpointWeightsAndCapacities starts and stops real instance processes: DescribeEndpoint's
CurrentInstanceCount counts the instances serving. The last test drives the policy with real traffic instead: the
metrics are the ones the local SageMaker publishes from InvokeEndpoint calls.
"""

from __future__ import annotations

import io
import math
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from PIL import Image

from local_aws.proctable import load_records, process_running
from tests.integration.local_aws_fixtures import Aws, serving_endpoint

SCALE = 60.0
DIMENSION = "sagemaker:variant:DesiredInstanceCount"

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _fast_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_AWS_TIME_SCALE", str(SCALE))


def put_invocations_per_instance(cw: Any, endpoint: str, value: float, ref: float, offsets: range) -> None:
    """``value`` in the one-minute periods ``ref + k`` for k in ``offsets`` (``ref``: a period boundary)."""
    period = 60.0 / SCALE
    dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]
    data = [
        {
            "MetricName": "InvocationsPerInstance",
            "Dimensions": dims,
            "Value": value,
            "Timestamp": datetime.fromtimestamp(ref + (k + 0.5) * period, UTC),
        }
        for k in offsets
    ]
    for i in range(0, len(data), 20):
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[i : i + 20])


def wait_capacity(sm: Any, endpoint: str, count: int, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=endpoint)
        variant = described["ProductionVariants"][0]
        settled = described["EndpointStatus"] == "InService" and variant.get("CurrentInstanceCount") == count
        if (settled and variant.get("DesiredInstanceCount") == count) or time.monotonic() > deadline:
            return described
        time.sleep(0.5)


def instance_processes(aws: Aws, endpoint: str) -> int:
    """Live model-server processes of ``endpoint``, from the runtime's process records."""
    records = load_records(aws.runtime.layout.processes)
    return sum(
        1
        for r in records
        if r.owner == f"endpoint/{endpoint}" and r.kind == "endpoint-instance" and process_running(r.pid)
    )


def test_target_tracking_scales_out_then_in(local_aws: Aws) -> None:
    endpoint = f"scaling-{uuid.uuid4().hex[:8]}"
    sm, cw = local_aws.client("sagemaker"), local_aws.client("cloudwatch")
    aas = local_aws.client("application-autoscaling")
    resource = f"endpoint/{endpoint}/variant/AllTraffic"
    with serving_endpoint(local_aws, endpoint, "autoscaling"):
        aas.register_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=DIMENSION, MinCapacity=1, MaxCapacity=2
        )
        aas.put_scaling_policy(
            PolicyName=f"{endpoint}-invocations-per-instance",
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension=DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 100.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                "ScaleInCooldown": 300,
                "ScaleOutCooldown": 60,
            },
        )
        try:
            # 2.5x the target per instance for the last three minutes and the next ten: AlarmHigh (3 of 3) holds
            # while the scaler looks; ceil(1 x 250 / 100) = 3, capped at MaxCapacity 2.
            period = 60.0 / SCALE
            ref = math.floor(time.time() / period) * period
            put_invocations_per_instance(cw, endpoint, 250.0, ref, range(-3, 10))
            out = wait_capacity(sm, endpoint, 2, timeout_s=240)
            variant = out["ProductionVariants"][0]
            assert (out["EndpointStatus"], variant["DesiredInstanceCount"], variant["CurrentInstanceCount"]) == (
                "InService",
                2,
                2,
            ), out
            assert instance_processes(local_aws, endpoint) == 2
            # Then fifteen minutes at 30 % of the target, after the busy ones: AlarmLow; ceil(2 x 30 / 100) = 1.
            first_low = max(10, math.ceil((time.time() - ref) / period) + 1)
            put_invocations_per_instance(cw, endpoint, 30.0, ref, range(first_low, first_low + 17))
            back = wait_capacity(sm, endpoint, 1, timeout_s=120)
            variant = back["ProductionVariants"][0]
            assert (back["EndpointStatus"], variant["DesiredInstanceCount"], variant["CurrentInstanceCount"]) == (
                "InService",
                1,
                1,
            ), back
            deadline = time.monotonic() + 30  # the removed instance drains, then its process is stopped
            while instance_processes(local_aws, endpoint) != 1 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert instance_processes(local_aws, endpoint) == 1
            found = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=resource)
            assert [(a["Description"], a["StatusCode"]) for a in found["ScalingActivities"]] == [
                ("Setting desired instance count to 1.", "Successful"),
                ("Setting desired instance count to 2.", "Successful"),
            ]
            assert "-AlarmLow-" in found["ScalingActivities"][0]["Cause"]
        finally:
            aas.deregister_scalable_target(
                ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=DIMENSION
            )
            aas.delete_scaling_policy(
                PolicyName=f"{endpoint}-invocations-per-instance",
                ServiceNamespace="sagemaker",
                ResourceId=resource,
                ScalableDimension=DIMENSION,
            )


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (120, 80, 40)).save(out, format="PNG")
    return out.getvalue()


def test_real_invocations_scale_the_endpoint_out(local_aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # 6x: a one-minute period lasts 10 real seconds, long against the publisher's one-second flush granularity.
    monkeypatch.setenv("LOCAL_AWS_TIME_SCALE", "6")
    endpoint = f"traffic-{uuid.uuid4().hex[:8]}"
    sm, smr = local_aws.client("sagemaker"), local_aws.client("sagemaker-runtime")
    aas = local_aws.client("application-autoscaling")
    resource = f"endpoint/{endpoint}/variant/AllTraffic"
    policy = f"{endpoint}-invocations-per-instance"
    with serving_endpoint(local_aws, endpoint, "autoscaling-traffic"):
        aas.register_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=DIMENSION, MinCapacity=1, MaxCapacity=2
        )
        aas.put_scaling_policy(
            PolicyName=policy,
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension=DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 10.0,  # invocations per instance per minute: 10 real seconds here
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                "ScaleOutCooldown": 60,
                "ScaleInCooldown": 300,
            },
        )
        stop = threading.Event()
        answered: list[int] = []

        def traffic() -> None:  # about 4 requests a second: ~40 per instance-minute, 4x the target
            body = _png()
            while not stop.is_set():
                answer = smr.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="image/png")
                answered.append(answer["ResponseMetadata"]["HTTPStatusCode"])
                stop.wait(0.25)

        sender = threading.Thread(target=traffic, daemon=True)
        sender.start()
        try:
            out = wait_capacity(sm, endpoint, 2, timeout_s=240)
        finally:
            stop.set()
            sender.join(timeout=30)
            aas.deregister_scalable_target(
                ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=DIMENSION
            )
            aas.delete_scaling_policy(
                PolicyName=policy, ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=DIMENSION
            )
        variant = out["ProductionVariants"][0]
        assert (out["EndpointStatus"], variant["DesiredInstanceCount"], variant["CurrentInstanceCount"]) == (
            "InService",
            2,
            2,
        ), out
        assert instance_processes(local_aws, endpoint) == 2
        assert answered and set(answered) == {200}  # the scale out failed no request
        (activity,) = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=resource)[
            "ScalingActivities"
        ]
        assert (activity["Description"], activity["StatusCode"]) == (
            "Setting desired instance count to 2.",
            "Successful",
        )
