"""The endpoint invocation metrics SageMaker publishes to CloudWatch, per endpoint and variant, once a minute.

docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html: namespace ``AWS/SageMaker``, dimensions
``EndpointName`` and ``VariantName``, sent at a 1-minute frequency: ``Invocations`` (requests sent to the variant),
``InvocationsPerInstance`` (1/numberOfInstances per request, the instances in service at the time: API
ScalingPolicyMetric), ``Invocation4XXErrors`` and ``Invocation5XXErrors`` (requests the model answered with a 4xx or
5xx; here also those no instance answered, status 0, and those with no healthy instance to go to: an alarm on
5XX errors must see an outage), ``ModelLatency`` and ``OverheadLatency`` in microseconds.

One minute is an AWS minute of ``local_aws/clock.py``: at ``LOCAL_AWS_TIME_SCALE=60`` a period lasts one real second,
so a test (or an alarm's evaluation) sees data without waiting minutes. Each period goes out as one statistic set per
metric (``StatisticValues``), as SageMaker's own data points carry Sum, SampleCount, Minimum and Maximum.

The data go straight into moto's CloudWatch backend, not through the edge: this is the service's own publishing,
not a caller's request, so it needs no credentials and must not count against (or be denied by) a caller's IAM
policy; moto's backend is the same store GetMetricStatistics and the alarms read.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local_aws import clock
from local_aws.constants import ACCOUNT_ID, REGION

LOGGER = logging.getLogger("local_aws.sagemaker")
NAMESPACE = "AWS/SageMaker"
PERIOD_AWS_S = 60.0

Publish = Callable[[str, list[dict[str, Any]]], None]


@dataclass
class _Stat:
    count: float = 0.0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def values(self) -> dict[str, float]:
        return {"SampleCount": self.count, "Sum": self.total, "Minimum": self.low, "Maximum": self.high}


@dataclass
class _Period:
    start: dt.datetime
    stats: dict[tuple[str, str, str], _Stat] = field(default_factory=dict)

    def add(self, endpoint: str, variant: str, metric: str, value: float) -> None:
        self.stats.setdefault((endpoint, variant, metric), _Stat()).add(value)


UNITS = {"ModelLatency": "Microseconds", "OverheadLatency": "Microseconds"}


class InvocationMetrics:
    """Collects one AWS minute of invocations, then publishes it (``flush_due`` is called about once a second)."""

    def __init__(self, publish: Publish) -> None:
        self._publish = publish
        self._lock = threading.Lock()
        self._period = _Period(_now())
        self._started = clock.monotonic()

    def record(
        self,
        endpoint: str,
        variant: str,
        instances: int,
        status: int,
        model_us: float | None,
        overhead_us: float,
    ) -> None:
        """One InvokeEndpoint that reached ``variant``: its outcome (HTTP status the model gave, 0 for none)."""
        with self._lock:
            period = self._period
            period.add(endpoint, variant, "Invocations", 1.0)
            period.add(endpoint, variant, "InvocationsPerInstance", 1.0 / max(1, instances))
            period.add(endpoint, variant, "Invocation4XXErrors", 1.0 if 400 <= status < 500 else 0.0)
            period.add(endpoint, variant, "Invocation5XXErrors", 1.0 if status >= 500 or status == 0 else 0.0)
            if model_us is not None:
                period.add(endpoint, variant, "ModelLatency", model_us)
            period.add(endpoint, variant, "OverheadLatency", overhead_us)

    def flush_due(self) -> None:
        """Publish the current period if an AWS minute has passed since it began."""
        if clock.monotonic() - self._started >= PERIOD_AWS_S:
            self.flush()

    def flush(self) -> None:
        """Publish what the current period holds (nothing when there was no invocation) and start a new one."""
        with self._lock:
            period, self._period = self._period, _Period(_now())
            self._started = clock.monotonic()
        by_endpoint: dict[str, list[dict[str, Any]]] = {}
        for (endpoint, variant, metric), stat in sorted(period.stats.items()):
            datum: dict[str, Any] = {
                "MetricName": metric,
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}],
                "Timestamp": period.start,
                "StatisticValues": stat.values(),
                "Unit": UNITS.get(metric, "None"),
            }
            by_endpoint.setdefault(endpoint, []).append(datum)
        for data in by_endpoint.values():
            try:
                self._publish(NAMESPACE, data)
            except Exception:  # metrics are best effort: losing a minute must never fail an invocation
                LOGGER.exception("publishing SageMaker metrics failed")


def _now() -> dt.datetime:
    # NOTE: naive UTC, as moto's CloudWatch keeps timestamps (it compares them with naive request times).
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# ----------------------------------------------------------------------------------------------- moto's CloudWatch
def _backend() -> Any:
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends[ACCOUNT_ID][REGION]


def publish_to_moto(namespace: str, data: list[dict[str, Any]]) -> None:
    """PutMetricData into moto's CloudWatch backend of the local account and region."""
    _backend().put_metric_data(namespace, data)


def alarms_in_alarm(names: list[str]) -> list[str]:
    """Which of the named CloudWatch alarms are in the ALARM state now (DescribeAlarms of the local CloudWatch).

    An alarm that does not exist is not in ALARM (it cannot trip).
    """
    return sorted(a.name for a in _backend().get_alarms_by_alarm_names(names) if a.state_value == "ALARM")
