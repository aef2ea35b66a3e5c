"""Target tracking's decision: fast scale out, gradual scale in, bounds, cooldowns, DisableScaleIn, suspension."""

from __future__ import annotations

from local_aws.autoscaling.target_tracking import Bounds, Cooldowns, TrackingPolicy, decide, proportional
from local_aws.cloudwatch.evaluation import Datapoint

POLICY = TrackingPolicy("p", target_value=100.0, scale_out_cooldown=60, scale_in_cooldown=300)
BOUNDS = Bounds(min_capacity=1, max_capacity=4)
NOW = 10_000.0


def series(*values: float | None) -> list[Datapoint]:
    return [Datapoint(60.0 * i, v, 1.0) for i, v in enumerate(values)]


HIGH_250 = series(250.0, 250.0, 250.0)
QUIET = series(*[100.0] * 15)
LOW_30 = series(*[30.0] * 15)


def test_proportional_capacity() -> None:
    assert proportional(1, 250.0, 100.0) == 3
    assert proportional(2, 100.0, 100.0) == 2
    assert proportional(3, 30.0, 100.0) == 1


def test_scales_out_in_proportion_after_three_high_minutes() -> None:
    decision = decide(POLICY, BOUNDS, 1, HIGH_250, QUIET, Cooldowns(), NOW)
    assert (decision.desired, decision.direction, decision.alarm) == (3, "out", "AlarmHigh")


def test_two_high_minutes_are_not_enough() -> None:
    assert decide(POLICY, BOUNDS, 1, series(100.0, 250.0, 250.0), QUIET, Cooldowns(), NOW).desired is None
    assert decide(POLICY, BOUNDS, 1, series(None, 250.0, 250.0), QUIET, Cooldowns(), NOW).desired is None


def test_scale_out_stops_at_max_capacity() -> None:
    assert decide(POLICY, BOUNDS, 2, series(900.0, 900.0, 900.0), QUIET, Cooldowns(), NOW).desired == 4
    held = decide(POLICY, BOUNDS, 4, HIGH_250, QUIET, Cooldowns(), NOW)
    assert (held.desired, held.held) == (None, "already at MaxCapacity")


def test_scale_out_cooldown_blocks_another_scale_out_only_while_it_lasts() -> None:
    assert decide(POLICY, BOUNDS, 1, HIGH_250, QUIET, Cooldowns(last_out=NOW - 30), NOW).held == "ScaleOutCooldown"
    assert decide(POLICY, BOUNDS, 1, HIGH_250, QUIET, Cooldowns(last_out=NOW - 61), NOW).desired == 3


def test_scale_in_cooldown_does_not_block_scale_out() -> None:
    assert decide(POLICY, BOUNDS, 1, HIGH_250, QUIET, Cooldowns(last_in=NOW - 1), NOW).desired == 3


def test_scales_in_only_after_fifteen_low_minutes_and_not_below_min() -> None:
    decision = decide(POLICY, BOUNDS, 3, series(30.0, 30.0, 30.0), LOW_30, Cooldowns(), NOW)
    assert (decision.desired, decision.direction, decision.alarm) == (1, "in", "AlarmLow")
    fourteen = series(100.0, *[30.0] * 14)
    assert decide(POLICY, BOUNDS, 3, series(30.0, 30.0, 30.0), fourteen, Cooldowns(), NOW).desired is None
    at_min = decide(POLICY, Bounds(2, 4), 2, series(30.0, 30.0, 30.0), LOW_30, Cooldowns(), NOW)
    assert (at_min.desired, at_min.held) == (None, "already at MinCapacity")


def test_just_under_target_is_not_low() -> None:
    # The low alarm is at 90 % of the target: 95 per instance keeps the capacity.
    assert decide(POLICY, BOUNDS, 3, series(95.0, 95.0, 95.0), series(*[95.0] * 15), Cooldowns(), NOW).desired is None


def test_scale_in_is_held_by_disable_scale_in_suspension_and_cooldown() -> None:
    low_high = series(30.0, 30.0, 30.0)
    disabled = TrackingPolicy("p", 100.0, 60, 300, disable_scale_in=True)
    assert decide(disabled, BOUNDS, 3, low_high, LOW_30, Cooldowns(), NOW).held == "DisableScaleIn"
    suspended = Bounds(1, 4, scale_in_suspended=True)
    assert decide(POLICY, suspended, 3, low_high, LOW_30, Cooldowns(), NOW).held == "DynamicScalingInSuspended"
    assert decide(POLICY, BOUNDS, 3, low_high, LOW_30, Cooldowns(last_in=NOW - 299), NOW).held == "ScaleInCooldown"
    assert decide(POLICY, BOUNDS, 3, low_high, LOW_30, Cooldowns(last_in=NOW - 301), NOW).desired == 1


def test_scale_out_suspension() -> None:
    suspended = Bounds(1, 4, scale_out_suspended=True)
    assert decide(POLICY, suspended, 1, HIGH_250, QUIET, Cooldowns(), NOW).held == "DynamicScalingOutSuspended"


def test_no_data_does_nothing() -> None:
    empty = series(None, None, None)
    assert decide(POLICY, BOUNDS, 3, empty, series(*[None] * 15), Cooldowns(), NOW).desired is None


def test_policy_from_config_defaults() -> None:
    policy = TrackingPolicy.from_config("p", {"TargetValue": 70.0, "ScaleOutCooldown": 60})
    assert (policy.target_value, policy.scale_out_cooldown, policy.scale_in_cooldown) == (70.0, 60.0, 300.0)
    assert not policy.disable_scale_in
