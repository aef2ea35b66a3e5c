"""The target tracking decision for one scalable target (pure: no clock, no moto, no I/O).

docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-target-tracking.html: the policy
keeps the metric at or near its target value, adding capacity in proportion to the metric's excess ("scale out
aggressively") and removing it only after a long stretch below the target ("scale in gradually"), within
MinCapacity and MaxCapacity. The policy's two alarms (constants.TARGET_TRACKING_*) are evaluated by the same code as
any CloudWatch alarm. ScaleOutCooldown blocks another scale out after one; ScaleInCooldown blocks another scale in,
but "if another alarm triggers a scale out policy during the cooldown period after a scale-in, application auto
scaling scales out your scalable target immediately". DisableScaleIn and the target's SuspendedState
(DynamicScalingInSuspended / DynamicScalingOutSuspended) switch a direction off.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from local_aws.cloudwatch.evaluation import ALARM, AlarmRule, Datapoint, evaluate
from local_aws.constants import (
    DEFAULT_SCALING_COOLDOWN_S,
    TARGET_TRACKING_HIGH_DATAPOINTS,
    TARGET_TRACKING_LOW_DATAPOINTS,
    TARGET_TRACKING_LOW_RATIO,
    TARGET_TRACKING_PERIOD_S,
)


@dataclass(frozen=True)
class TrackingPolicy:
    """A TargetTrackingScalingPolicyConfiguration."""

    name: str
    target_value: float
    scale_out_cooldown: float = DEFAULT_SCALING_COOLDOWN_S
    scale_in_cooldown: float = DEFAULT_SCALING_COOLDOWN_S
    disable_scale_in: bool = False

    @classmethod
    def from_config(cls, name: str, config: dict[str, object]) -> TrackingPolicy:
        def seconds(key: str) -> float:
            value = config.get(key)
            return DEFAULT_SCALING_COOLDOWN_S if value is None else float(str(value))

        return cls(
            name=name,
            target_value=float(str(config["TargetValue"])),
            scale_out_cooldown=seconds("ScaleOutCooldown"),
            scale_in_cooldown=seconds("ScaleInCooldown"),
            disable_scale_in=bool(config.get("DisableScaleIn", False)),
        )

    def high_alarm(self) -> AlarmRule:
        n = TARGET_TRACKING_HIGH_DATAPOINTS
        return AlarmRule("Sum", "GreaterThanThreshold", self.target_value, n, n, "missing", TARGET_TRACKING_PERIOD_S)

    def low_alarm(self) -> AlarmRule:
        n = TARGET_TRACKING_LOW_DATAPOINTS
        low = self.target_value * TARGET_TRACKING_LOW_RATIO
        return AlarmRule("Sum", "LessThanThreshold", low, n, n, "missing", TARGET_TRACKING_PERIOD_S)


@dataclass(frozen=True)
class Bounds:
    """The scalable target: capacity bounds and suspension."""

    min_capacity: int
    max_capacity: int
    scale_in_suspended: bool = False
    scale_out_suspended: bool = False


@dataclass(frozen=True)
class Decision:
    """A capacity to set (``desired`` None: leave it), which alarm caused it, and why not when it is held."""

    desired: int | None
    direction: str = ""  # "out" | "in"
    alarm: str = ""  # "AlarmHigh" | "AlarmLow"
    held: str = ""  # why a breached alarm did not change capacity


@dataclass
class Cooldowns:
    """When (AWS seconds, local monotonic clock) the target last scaled each way."""

    last_out: float | None = None
    last_in: float | None = None


def proportional(current: int, metric: float, target: float) -> int:
    """The capacity that brings a per-instance metric back to ``target``: ceil(current × metric / target)."""
    return max(0, math.ceil(current * metric / target - 1e-9))


def decide(
    policy: TrackingPolicy,
    bounds: Bounds,
    current: int,
    high: Sequence[Datapoint],
    low: Sequence[Datapoint],
    cooldowns: Cooldowns,
    now: float,
) -> Decision:
    """What the policy does now.

    Args:
        policy: the policy.
        bounds: the target's bounds and suspension.
        current: the variant's DesiredInstanceCount.
        high: the last TARGET_TRACKING_HIGH_DATAPOINTS one-minute datapoints of the metric (oldest first).
        low: the last TARGET_TRACKING_LOW_DATAPOINTS datapoints (oldest first).
        cooldowns: when the target last scaled.
        now: the local monotonic clock, AWS seconds.
    """
    if evaluate(policy.high_alarm(), high, "OK").state == ALARM:
        latest = next(p.value for p in reversed(high) if p.value is not None)
        desired = min(bounds.max_capacity, max(bounds.min_capacity, proportional(current, latest, policy.target_value)))
        if desired <= current:
            return Decision(
                None, "out", "AlarmHigh", "already at MaxCapacity" if current >= bounds.max_capacity else ""
            )
        if bounds.scale_out_suspended:
            return Decision(None, "out", "AlarmHigh", "DynamicScalingOutSuspended")
        if cooldowns.last_out is not None and now - cooldowns.last_out < policy.scale_out_cooldown:
            return Decision(None, "out", "AlarmHigh", "ScaleOutCooldown")
        return Decision(desired, "out", "AlarmHigh")
    if evaluate(policy.low_alarm(), low, "OK").state == ALARM:
        latest = next(p.value for p in reversed(low) if p.value is not None)
        desired = min(bounds.max_capacity, max(bounds.min_capacity, proportional(current, latest, policy.target_value)))
        if desired >= current:
            at_min = current <= bounds.min_capacity
            return Decision(None, "in", "AlarmLow", "already at MinCapacity" if at_min else "")
        if policy.disable_scale_in:
            return Decision(None, "in", "AlarmLow", "DisableScaleIn")
        if bounds.scale_in_suspended:
            return Decision(None, "in", "AlarmLow", "DynamicScalingInSuspended")
        if cooldowns.last_in is not None and now - cooldowns.last_in < policy.scale_in_cooldown:
            return Decision(None, "in", "AlarmLow", "ScaleInCooldown")
        return Decision(desired, "in", "AlarmLow")
    return Decision(None)
