"""One evaluation of one metric alarm, as CloudWatch does it (pure: no moto, no I/O; only queryDate reads the clock).

docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html: an alarm turns each ``Period`` of
its metric into one datapoint with its ``Statistic`` (or ``ExtendedStatistic`` pNN), compares it with ``Threshold``
by ``ComparisonOperator``, and goes to ALARM when ``DatapointsToAlarm`` (M, default ``EvaluationPeriods``) of the
last ``EvaluationPeriods`` (N) datapoints breach. A period without data is missing; ``TreatMissingData`` says what
it counts as: ``notBreaching`` and ``breaching`` fill it in, ``ignore`` keeps the current state when nothing is left
to evaluate, ``missing`` (the default) goes to INSUFFICIENT_DATA when every period is missing. The state changes only
on a transition, with a reason in CloudWatch's own wording, e.g. "Threshold Crossed: 1 out of the last 1 datapoints
[5.0 (29/12/25 10:35:00)] was greater than the threshold (0.0) (minimum 1 datapoint for OK -> ALARM transition)."
and "... was not greater than or equal to the threshold (1.0) (minimum 1 datapoint for ALARM -> OK transition).",
whatever state the alarm left (as in alarm notifications CloudWatch sent, quoted in public repositories), and
"Threshold Crossed: 1 datapoint was received for 4 periods and 3 missing datapoints were treated as [NonBreaching]."
(SSHcom/privx-on-aws#13).

NOTE: CloudWatch also looks further back than N periods when some are missing (the "evaluation range"); here the
range is exactly the last N complete periods.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

OK = "OK"
ALARM = "ALARM"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
TREAT_MISSING = ("breaching", "notBreaching", "ignore", "missing")
# ComparisonOperator → (test, CloudWatch's phrase in StateReason). The anomaly-detection operators need a band
# (ThresholdMetricId) and are not evaluated here.
COMPARISONS = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
_PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d{1,2})?|100)$")


class UnsupportedAlarm(ValueError):
    """The alarm uses something this evaluator does not evaluate (metric math, an anomaly band, a trimmed mean)."""


@dataclass(frozen=True)
class Sample:
    """One PutMetricData entry: a raw value, or a StatisticSet (``stats`` = SampleCount, Sum, Minimum, Maximum)."""

    timestamp: float  # epoch seconds, wall clock
    value: float | None = None
    stats: tuple[float, float, float, float] | None = None
    unit: str | None = None


@dataclass(frozen=True)
class AlarmRule:
    """What an alarm evaluates, from PutMetricAlarm's parameters."""

    statistic: str  # Statistic, or ExtendedStatistic (pNN)
    comparison: str
    threshold: float
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing: str = "missing"
    period: int = 60  # AWS seconds, for StateReasonData only (the caller scales periods for bucketing)

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS and not _PERCENTILE.match(self.statistic):
            raise UnsupportedAlarm(f"statistic {self.statistic!r}: expected one of {list(STATISTICS)} or pNN")
        if self.comparison not in COMPARISONS:
            raise UnsupportedAlarm(f"comparison {self.comparison!r}: expected one of {sorted(COMPARISONS)}")
        if self.treat_missing not in TREAT_MISSING:
            raise UnsupportedAlarm(f"TreatMissingData {self.treat_missing!r}: expected one of {list(TREAT_MISSING)}")
        if not 1 <= self.datapoints_to_alarm <= self.evaluation_periods:
            raise UnsupportedAlarm("DatapointsToAlarm must be between 1 and EvaluationPeriods")


@dataclass(frozen=True)
class Datapoint:
    """One period's value (None: no data in the period)."""

    start: float  # epoch seconds of the period's start
    value: float | None
    sample_count: float = 0.0


@dataclass(frozen=True)
class Verdict:
    """The state an evaluation arrives at; ``state`` None: keep the current state (``ignore`` with no data)."""

    state: str | None
    reason: str
    reason_data: dict[str, Any]


def statistic(name: str, samples: Sequence[Sample]) -> tuple[float | None, float]:
    """(value, sample count) of ``samples`` for ``name``; value None when the period has no usable data.

    A percentile needs raw values: StatisticSet entries carry none, so they do not count towards one.
    """
    raw = [s.value for s in samples if s.value is not None]
    sets = [s.stats for s in samples if s.stats is not None]
    if name.startswith("p"):
        if not raw:
            return None, 0.0
        return _percentile(sorted(raw), float(name[1:])), float(len(raw))
    count = len(raw) + sum(st[0] for st in sets)
    if count == 0:
        return None, 0.0
    total = sum(raw) + sum(st[1] for st in sets)
    if name == "SampleCount":
        return count, count
    if name == "Sum":
        return total, count
    if name == "Average":
        return total / count, count
    lows = raw + [st[2] for st in sets]
    highs = raw + [st[3] for st in sets]
    return (min(lows) if name == "Minimum" else max(highs)), count


def _percentile(ordered: list[float], pct: float) -> float:
    # Nearest rank, the usual definition for pNN.
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def datapoints(
    samples: Iterable[Sample], stat: str, period_s: float, periods: int, now: float, unit: str | None = None
) -> list[Datapoint]:
    """The last ``periods`` complete periods before ``now`` (oldest first), aligned to multiples of ``period_s``.

    Args:
        samples: the metric's data (one metric: namespace, name and exact dimensions already matched).
        stat: the statistic.
        period_s: the period in wall-clock seconds (the caller scales AWS's Period by the local clock).
        periods: how many.
        now: epoch seconds.
        unit: only data with this unit counts (the alarm's Unit), None: all.
    """
    end = math.floor(now / period_s) * period_s
    start = end - periods * period_s
    buckets: list[list[Sample]] = [[] for _ in range(periods)]
    for sample in samples:
        if unit is not None and sample.unit != unit:
            continue
        if start <= sample.timestamp < end:
            buckets[min(periods - 1, int((sample.timestamp - start) // period_s))].append(sample)
    out = []
    for i, bucket in enumerate(buckets):
        value, count = statistic(stat, bucket)
        out.append(Datapoint(start + i * period_s, value, count))
    return out


def evaluate(rule: AlarmRule, points: Sequence[Datapoint], current: str) -> Verdict:
    """The alarm's state after this evaluation, with CloudWatch's StateReason and StateReasonData."""
    test, phrase = COMPARISONS[rule.comparison]
    n, m = rule.evaluation_periods, rule.datapoints_to_alarm
    present = [p for p in points if p.value is not None]
    missing = len(points) - len(present)
    breaching = sum(1 for p in present if test(p.value, rule.threshold))
    data = _reason_data(rule, points, present)
    shown = ", ".join(f"{_num(p.value)} ({_stamp(p.start)})" for p in reversed(present))
    if missing and rule.treat_missing in ("breaching", "notBreaching"):
        fill = rule.treat_missing == "breaching"
        alarmed = breaching + (missing if fill else 0) >= m
        if alarmed and breaching >= m:  # the real datapoints alone breach: CloudWatch names them
            return Verdict(ALARM, _crossed(breaching, n, shown, phrase, rule, m), data)
        received = "no datapoints were" if not present else f"{_count(len(present), 'datapoint')} {_was(len(present))}"
        treated = "Breaching" if fill else "NonBreaching"
        reason = (
            f"Threshold Crossed: {received} received for {_count(n, 'period')} and "
            f"{_count(missing, 'missing datapoint')} {_was(missing)} treated as [{treated}]."
        )
        return Verdict(ALARM if alarmed else OK, reason, data)
    if not present:
        if rule.treat_missing == "ignore":
            return Verdict(None, "", data)
        return Verdict(
            INSUFFICIENT_DATA, f"Insufficient Data: {_count(missing, 'datapoint')} {_was(missing)} unknown.", data
        )
    if breaching >= m:
        return Verdict(ALARM, _crossed(breaching, len(present), shown, phrase, rule, m), data)
    within = len(present) - breaching
    reason = (
        f"Threshold Crossed: {within} out of the last {len(present)} datapoints [{shown}] {_was(within)} not "
        f"{phrase} the threshold ({_num(rule.threshold)}) (minimum 1 datapoint for ALARM -> OK transition)."
    )
    return Verdict(OK, reason, data)


def _crossed(breaching: int, last: int, shown: str, phrase: str, rule: AlarmRule, m: int) -> str:
    return (
        f"Threshold Crossed: {breaching} out of the last {last} datapoints [{shown}] {_was(breaching)} "
        f"{phrase} the threshold ({_num(rule.threshold)}) "
        f"(minimum {_count(m, 'datapoint')} for OK -> ALARM transition)."
    )


def _reason_data(rule: AlarmRule, points: Sequence[Datapoint], present: Sequence[Datapoint]) -> dict[str, Any]:
    # StateReasonData's shape (version 1.0) as CloudWatch writes it for a threshold alarm: queryDate, startDate,
    # statistic, period (AWS seconds), recentDatapoints, threshold, evaluatedDatapoints.
    data: dict[str, Any] = {"version": "1.0", "queryDate": _iso(time.time())}
    if points:
        data["startDate"] = _iso(points[0].start)
    return data | {
        "statistic": rule.statistic,
        "period": rule.period,
        "recentDatapoints": [p.value for p in present],
        "threshold": rule.threshold,
        "evaluatedDatapoints": [
            {"timestamp": _iso(p.start), "sampleCount": p.sample_count, "value": p.value} for p in reversed(present)
        ],
    }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _was(n: int) -> str:
    return "was" if n == 1 else "were"


def _num(value: float | None) -> str:
    return repr(float(value or 0.0))


def _stamp(epoch: float) -> str:
    # CloudWatch's StateReason dates: dd/mm/yy HH:MM:SS, UTC.
    return datetime.fromtimestamp(epoch, UTC).strftime("%d/%m/%y %H:%M:%S")


def _iso(epoch: float) -> str:
    stamp = datetime.fromtimestamp(epoch, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}+0000"
