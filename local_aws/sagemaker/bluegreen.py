"""Blue/green deployment guardrails of UpdateEndpoint: traffic shifting steps, baking, alarm rollback, time limits.

What SageMaker does (docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green.html and its
-all-at-once, -canary and -linear pages; BlueGreenUpdatePolicy in botocore's sagemaker model):

- the green fleet (the new endpoint config, its own instance count) is provisioned and passes its health checks
  while blue serves everything;
- ``ALL_AT_ONCE``: green gets 100 % of the traffic in one step, then bakes ``WaitIntervalInSeconds``;
  ``CANARY``: green gets ``CanarySize`` (at most 50 % of the variant's instance count) and bakes, then the rest moves
  and a final bake follows; ``LINEAR``: ``LinearStepSize`` (10-50 %) more each step, each step baking;
- during every bake the ``AutoRollbackConfiguration`` alarms are watched: one in ALARM sends all traffic back to
  blue and the deployment rolls back ("If any alarms are tripped during a deployment, SageMaker rolls back", API
  AutoRollbackConfig); ``MaximumExecutionTimeoutInSeconds`` bounds the whole deployment;
- once green serves everything, blue is kept ``TerminationWaitInSeconds`` (alarms still watched), then terminated.

The traffic share of a step is by capacity: ``CAPACITY_PERCENT`` is the share itself, ``INSTANCE_COUNT`` is that many
of the green fleet's instances. Waits are AWS seconds on ``local_aws/clock.py``, so a test can scale them.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local_aws import clock
from local_aws.sagemaker.errors import validation

ALARM_POLL_REAL_S = 0.1
DEFAULT_TIMEOUT_S = 28800  # MaximumExecutionTimeoutInSeconds' maximum; SageMaker documents no default


@dataclass(frozen=True)
class Plan:
    """The traffic shares green goes through, how long each bakes, and what ends the deployment."""

    shares: list[float]
    bake_s: float
    termination_wait_s: float
    timeout_s: float
    alarms: list[str]


def plan(deployment: dict[str, Any] | None, green_count: int) -> Plan:
    """The plan of a DeploymentConfig (None: blue/green all at once with no bake, SageMaker's default).

    Raises:
        SageMakerError: a ValidationException for a policy the local runtime does not run, or a step size outside
            SageMaker's documented range.
    """
    deployment = deployment or {}
    alarms = [a["AlarmName"] for a in (deployment.get("AutoRollbackConfiguration") or {}).get("Alarms") or []]
    if deployment.get("RollingUpdatePolicy"):
        raise validation(
            "DeploymentConfig.RollingUpdatePolicy is not supported by the local SageMaker runtime; "
            "use BlueGreenUpdatePolicy (ALL_AT_ONCE, CANARY or LINEAR)."
        )
    policy = deployment.get("BlueGreenUpdatePolicy")
    if not policy:
        return Plan([1.0], 0.0, 0.0, DEFAULT_TIMEOUT_S, alarms)
    routing = policy["TrafficRoutingConfiguration"]
    kind = routing["Type"]
    if kind == "CANARY":
        canary = _share(routing, "CanarySize", green_count)
        if canary > 0.5:
            raise validation(
                f"CanarySize must be at most 50% of the variant's instance count ({green_count}); got "
                f"{_describe(routing['CanarySize'])}."
            )
        shares = [canary, 1.0]
    elif kind == "LINEAR":
        step = _share(routing, "LinearStepSize", green_count)
        if not 0.1 <= step <= 0.5:
            raise validation(
                f"LinearStepSize must be between 10% and 50% of the variant's instance count ({green_count}); got "
                f"{_describe(routing['LinearStepSize'])}."
            )
        steps = math.ceil(1.0 / step - 1e-9)
        shares = [min(1.0, step * (i + 1)) for i in range(steps)]
    else:
        shares = [1.0]
    return Plan(
        shares,
        float(routing["WaitIntervalInSeconds"]),
        float(policy.get("TerminationWaitInSeconds") or 0),
        float(policy.get("MaximumExecutionTimeoutInSeconds") or DEFAULT_TIMEOUT_S),
        alarms,
    )


def _share(routing: dict[str, Any], key: str, green_count: int) -> float:
    size = routing.get(key)
    if not size:
        raise validation(f"TrafficRoutingConfiguration.{key} is required when Type is {routing['Type']}.")
    if size["Type"] == "CAPACITY_PERCENT":
        return min(100.0, float(size["Value"])) / 100.0
    return min(float(size["Value"]), float(green_count)) / max(1, green_count)


def _describe(size: dict[str, Any]) -> str:
    return f"{size['Value']}%" if size["Type"] == "CAPACITY_PERCENT" else f"{size['Value']} instance(s)"


class RolledBack(Exception):
    """The deployment must roll back; the message becomes the endpoint's FailureReason."""


@dataclass
class Bake:
    """Runs a plan: ``shift(share)`` routes that share to green, ``status(name)`` sets the VariantStatus.

    ``alarms_in_alarm(names)`` reads the alarms' state; ``stopping`` ends the wait early (server shutdown).
    """

    plan: Plan
    shift: Callable[[float], None]
    status: Callable[[str], None]
    alarms_in_alarm: Callable[[list[str]], list[str]]
    stopping: threading.Event

    def run(self, started: float | None = None) -> None:
        """Shift and bake step by step.

        Args:
            started: when the deployment began (``clock.monotonic()``; now when None): the execution timeout
                counts the green fleet's provisioning too.

        Raises:
            RolledBack: an alarm tripped, or the deployment ran past MaximumExecutionTimeoutInSeconds.
        """
        started = clock.monotonic() if started is None else started
        for share in self.plan.shares:
            self.status("ActivatingTraffic")
            self.shift(share)
            self.status("Baking")
            self._watch(self.plan.bake_s, started)
        self._watch(self.plan.termination_wait_s, started)

    def _watch(self, aws_seconds: float, started: float) -> None:
        """Wait ``aws_seconds`` of AWS time, checking the alarms and the deadline all along (at least once)."""
        until = clock.monotonic() + aws_seconds
        while True:
            tripped = self.alarms_in_alarm(self.plan.alarms) if self.plan.alarms else []
            if tripped:
                raise RolledBack(
                    "The deployment was rolled back because the following CloudWatch alarm(s) went into the ALARM "
                    f"state: {', '.join(tripped)}."
                )
            now = clock.monotonic()
            if now - started > self.plan.timeout_s:
                raise RolledBack(
                    "The deployment was rolled back because it did not complete within "
                    f"MaximumExecutionTimeoutInSeconds ({self.plan.timeout_s:g} seconds)."
                )
            if now >= until or self.stopping.is_set():
                return
            self.stopping.wait(min(ALARM_POLL_REAL_S, clock.real_seconds(until - now)))
