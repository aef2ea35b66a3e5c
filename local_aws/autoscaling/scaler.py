"""The scaling loop: target tracking on every SageMaker variant registered with Application Auto Scaling.

Each pass reads moto's Application Auto Scaling backend (scalable targets ``sagemaker:variant:DesiredInstanceCount``
and their TargetTrackingScaling policies on ``SageMakerVariantInvocationsPerInstance``) and moto's CloudWatch data
of ``AWS/SageMaker InvocationsPerInstance`` for the variant, decides with ``target_tracking.decide`` and, when the
capacity changes, calls SageMaker's UpdateEndpointWeightsAndCapacities through the local edge with the runtime's
credentials: exactly the call Application Auto Scaling makes, so the endpoint really starts or stops instances and
DescribeEndpoint reports the new DesiredInstanceCount. An endpoint that is not InService (Updating, Creating, ...)
is left alone until it is ("the scaler waits"), a deregistered target or deleted policy is no longer looked at,
and cooldowns are kept per target as real monotonic stamps, read in AWS seconds at the current scale (so a test
that changes LOCAL_AWS_TIME_SCALE never leaves a cooldown running for ages).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from moto.applicationautoscaling.models import applicationautoscaling_backends

from local_aws import clock
from local_aws.autoscaling import activities, errors
from local_aws.autoscaling.target_tracking import Bounds, Cooldowns, Decision, TrackingPolicy, decide
from local_aws.cloudwatch import alarms
from local_aws.cloudwatch.evaluation import ALARM, OK, Datapoint, datapoints, evaluate
from local_aws.constants import (
    ACCOUNT_ID,
    LOOP_MIN_INTERVAL_S,
    REGION,
    SAGEMAKER_METRIC_NAMESPACE,
    SAGEMAKER_VARIANT_DIMENSION,
    SCALING_INTERVAL_S,
    TARGET_TRACKING_HIGH_DATAPOINTS,
    TARGET_TRACKING_LOW_DATAPOINTS,
    TARGET_TRACKING_PERIOD_S,
)

LOGGER = logging.getLogger("local_aws.autoscaling")
PREDEFINED_METRIC = "SageMakerVariantInvocationsPerInstance"


@dataclass(frozen=True)
class Variant:
    """``endpoint/<EndpointName>/variant/<VariantName>``."""

    endpoint: str
    variant: str

    @classmethod
    def parse(cls, resource_id: str) -> Variant | None:
        parts = resource_id.split("/")
        if len(parts) != 4 or parts[0] != "endpoint" or parts[2] != "variant":
            return None
        return cls(parts[1], parts[3])


def _tracking_policies(backend: Any, resource_id: str) -> list[tuple[TrackingPolicy, str]]:
    """The target's TargetTrackingScaling policies on the predefined invocations metric, with their alarm id."""
    out = []
    for policy in list(backend.policies.values()):
        if (
            policy.service_namespace != "sagemaker"
            or policy.resource_id != resource_id
            or policy.scalable_dimension != SAGEMAKER_VARIANT_DIMENSION
            or policy.policy_type != "TargetTrackingScaling"
        ):
            continue
        config = policy.target_tracking_scaling_policy_configuration or {}
        metric = (config.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
        if metric != PREDEFINED_METRIC:
            LOGGER.debug(
                "policy %s tracks %r; only %s is evaluated locally", policy.policy_name, metric, PREDEFINED_METRIC
            )
            continue
        try:
            out.append((TrackingPolicy.from_config(policy.policy_name, config), str(policy._guid)))
        except (KeyError, TypeError, ValueError):
            LOGGER.debug("policy %s has no usable TargetValue", policy.policy_name)
    return out


def _breached(policy: TrackingPolicy, high: list[Datapoint], low: list[Datapoint]) -> bool:
    """Whether the policy's AlarmHigh or AlarmLow is in ALARM."""
    return (
        evaluate(policy.high_alarm(), high, OK).state == ALARM or evaluate(policy.low_alarm(), low, OK).state == ALARM
    )


class TargetTracker:
    """The loop: every SCALING_INTERVAL_S of AWS time, at least LOOP_MIN_INTERVAL_S real seconds apart. Building
    one patches moto's Application Auto Scaling in this process (``activities``, ``errors``).

    Args:
        sagemaker: a boto3 SageMaker client on the local edge (the runtime's credentials).
    """

    def __init__(self, sagemaker: Any) -> None:
        activities.apply()
        errors.apply()
        self.sagemaker = sagemaker
        self._metrics = alarms.MetricCache()
        self._scaled: dict[str, Cooldowns] = {}  # per target: real time.monotonic() of the last scale out / in
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="autoscaling", daemon=True)

    def start(self) -> TargetTracker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.scale_once()
            except Exception:  # one bad pass must not end scaling for good
                LOGGER.exception("a scaling pass failed")
            clock.pause(self._stop, SCALING_INTERVAL_S, LOOP_MIN_INTERVAL_S)

    def scale_once(self, now: float | None = None) -> int:
        """One pass over every registered variant; returns how many were resized."""
        backend = applicationautoscaling_backends[ACCOUNT_ID][REGION]
        targets = list(backend.targets.get(SAGEMAKER_VARIANT_DIMENSION, {}).values())
        live = {t.resource_id for t in targets}
        for gone in set(self._scaled) - live:
            del self._scaled[gone]  # deregistered: a new registration starts without cooldowns
        resized = 0
        for target in targets:
            variant = Variant.parse(target.resource_id)
            policies = _tracking_policies(backend, target.resource_id)
            if target.service_namespace != "sagemaker" or variant is None or not policies:
                continue
            if target.min_capacity is None or target.max_capacity is None:
                continue  # AWS refuses such a first registration; moto keeps it, with no bounds to scale within
            resized += self._track(target, variant, policies, time.time() if now is None else now)
        return resized

    def _track(self, target: Any, variant: Variant, policies: list[tuple[TrackingPolicy, str]], now: float) -> int:
        key = alarms.metric_key(
            SAGEMAKER_METRIC_NAMESPACE,
            "InvocationsPerInstance",
            [("EndpointName", variant.endpoint), ("VariantName", variant.variant)],
        )
        period = clock.real_seconds(TARGET_TRACKING_PERIOD_S)
        since = now - (TARGET_TRACKING_LOW_DATAPOINTS + 1) * period
        samples = self._metrics.samples(alarms.backend(), {key}, since)[key]
        if not samples:
            return 0  # no data: both alarms are INSUFFICIENT_DATA, target tracking does nothing
        high = datapoints(samples, "Sum", period, TARGET_TRACKING_HIGH_DATAPOINTS, now)
        low = datapoints(samples, "Sum", period, TARGET_TRACKING_LOW_DATAPOINTS, now)
        if not any(_breached(p, high, low) for p, _ in policies):
            return 0  # both alarms of every policy are OK: nothing to ask SageMaker
        try:
            described = self.sagemaker.describe_endpoint(EndpointName=variant.endpoint)
        except (ClientError, BotoCoreError) as exc:
            LOGGER.debug("endpoint %s cannot be described: %s", variant.endpoint, exc)
            return 0
        if described.get("EndpointStatus") != "InService":
            return 0  # Application Auto Scaling waits for an update in progress to finish
        current = next(
            (
                int(v.get("DesiredInstanceCount", v.get("CurrentInstanceCount", 0)))
                for v in described.get("ProductionVariants", [])
                if v.get("VariantName") == variant.variant
            ),
            None,
        )
        if current is None:
            return 0
        suspended = target.suspended_state or {}
        bounds = Bounds(
            int(target.min_capacity),
            int(target.max_capacity),
            scale_in_suspended=bool(suspended.get("DynamicScalingInSuspended")),
            scale_out_suspended=bool(suspended.get("DynamicScalingOutSuspended")),
        )
        stamps = self._scaled.get(target.resource_id, Cooldowns())
        cooldowns = Cooldowns(
            None if stamps.last_out is None else clock.aws_seconds(stamps.last_out),
            None if stamps.last_in is None else clock.aws_seconds(stamps.last_in),
        )
        aws_now = clock.aws_seconds(time.monotonic())
        decisions = [(decide(p, bounds, current, high, low, cooldowns, aws_now), p, guid) for p, guid in policies]
        # Several policies: scale out if any says so (the largest capacity); scale in only if all of them do.
        outs = [d for d in decisions if d[0].desired is not None and d[0].direction == "out"]
        ins = [d for d in decisions if d[0].desired is not None and d[0].direction == "in"]
        if outs:
            chosen = max(outs, key=lambda d: d[0].desired or 0)
        elif ins and len(ins) == len(decisions):
            chosen = max(ins, key=lambda d: d[0].desired or 0)
        else:
            return 0
        return self._apply(target, variant, current, *chosen)

    def _apply(
        self, target: Any, variant: Variant, current: int, decision: Decision, policy: TrackingPolicy, guid: str
    ) -> int:
        desired = int(decision.desired or 0)
        alarm_name = f"TargetTracking-{target.resource_id}-{decision.alarm}-{guid}"
        activity = activities.start(
            "sagemaker",
            target.resource_id,
            SAGEMAKER_VARIANT_DIMENSION,
            f"Setting desired instance count to {desired}.",
            f"monitor alarm {alarm_name} in state ALARM triggered policy {policy.name}",
        )
        try:
            self.sagemaker.update_endpoint_weights_and_capacities(
                EndpointName=variant.endpoint,
                DesiredWeightsAndCapacities=[{"VariantName": variant.variant, "DesiredInstanceCount": desired}],
            )
        except (ClientError, BotoCoreError) as exc:
            activities.finish(activity, "Failed", f"Failed to set desired instance count to {desired}. {exc}")
            LOGGER.warning("scaling %s to %d failed: %s", target.resource_id, desired, exc)
            return 0
        stamps = self._scaled.setdefault(target.resource_id, Cooldowns())
        if decision.direction == "out":
            stamps.last_out = time.monotonic()
        else:
            stamps.last_in = time.monotonic()
        activities.finish(
            activity,
            "Successful",
            f"Successfully set desired instance count to {desired}. Change successfully fulfilled by sagemaker.",
        )
        LOGGER.info("scaled %s from %d to %d (%s)", target.resource_id, current, desired, alarm_name)
        return 1
