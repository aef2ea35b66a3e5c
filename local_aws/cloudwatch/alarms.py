"""The alarm evaluator: one thread that evaluates every metric alarm moto holds, the way CloudWatch does.

It reads moto's CloudWatch backend directly rather than calling GetMetricStatistics: with the local clock scaled
(``LOCAL_AWS_TIME_SCALE``), a 60-second period can last a fraction of a real second, which GetMetricStatistics'
integer ``Period`` cannot express, and moto's statistics start their buckets at the first datum instead of at period
boundaries. State changes go through the backend's ``set_alarm_state`` (SetAlarmState's own path, patched by
``history.apply()`` to record the history item), only on a transition, as CloudWatch does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import Alarm, CloudWatchBackend, MetricAggregatedDatum, MetricDatum, cloudwatch_backends

from local_aws import clock
from local_aws.cloudwatch import history
from local_aws.cloudwatch.evaluation import AlarmRule, Sample, UnsupportedAlarm, datapoints, evaluate
from local_aws.constants import (
    ACCOUNT_ID,
    ALARM_EVALUATION_INTERVAL_S,
    ALARM_MAX_EVALUATION_INTERVAL_S,
    LOOP_MIN_INTERVAL_S,
    REGION,
)

LOGGER = logging.getLogger("local_aws.cloudwatch")
MetricKey = tuple[str, str, frozenset[tuple[str, str]]]


def backend() -> CloudWatchBackend:
    """moto's CloudWatch of the local account and region."""
    return cloudwatch_backends[ACCOUNT_ID][REGION]


def _epoch(stamp: datetime) -> float:
    # moto keeps timestamps naive in UTC (its utcnow()), or as parsed.
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def metric_key(namespace: str, name: str, dimensions: Iterable[tuple[str, str]]) -> MetricKey:
    """A metric's identity: CloudWatch treats each exact set of (name, value) dimensions as a separate metric."""
    return namespace, name, frozenset((str(k), str(v)) for k, v in dimensions)


def _pairs(dimensions: Iterable[Any]) -> list[tuple[str, str]]:
    """moto's Dimension objects as (name, value)."""
    return [(str(d.name), str(d.value)) for d in dimensions]


class MetricCache:
    """moto's metric data as evaluation Samples, by metric; each pass converts only what was appended since the last.

    NOTE: moto only ever appends to ``metric_data`` (PutMetricData); a shorter or different list (a moto reset)
    starts the cache over. One cache per thread: the alarm evaluator and the scaler each keep their own.
    """

    def __init__(self) -> None:
        self._source: int | None = None
        self._seen = 0
        self._by_key: dict[MetricKey, list[Sample]] = defaultdict(list)

    def samples(self, cw: CloudWatchBackend, keys: set[MetricKey], since: float) -> dict[MetricKey, list[Sample]]:
        """The data of the metrics ``keys`` from ``since`` on (epoch seconds)."""
        data = cw.metric_data
        if id(data) != self._source or len(data) < self._seen:
            self._source, self._seen, self._by_key = id(data), 0, defaultdict(list)
        end = len(data)  # request threads append while this reads: take what is there now
        for datum in data[self._seen : end]:
            sample = _sample(datum)
            if sample is not None:
                self._by_key[metric_key(datum.namespace, datum.name, _pairs(datum.dimensions))].append(sample)
        self._seen = end
        return {key: [s for s in self._by_key.get(key, ()) if s.timestamp >= since] for key in keys}


def _sample(datum: Any) -> Sample | None:
    stamp = _epoch(datum.timestamp)
    unit = str(datum.unit) if datum.unit else None
    if isinstance(datum, MetricDatum):
        return Sample(stamp, value=float(datum.value), unit=unit)
    if isinstance(datum, MetricAggregatedDatum):
        stats = (float(datum.sample_count), float(datum.sum), float(datum.min), float(datum.max))
        return Sample(stamp, stats=stats, unit=unit)
    return None


def alarm_rule(alarm: Alarm) -> AlarmRule:
    """The evaluation rule of a moto alarm.

    Raises:
        UnsupportedAlarm: a metric-math, composite or anomaly-band alarm.
    """
    if alarm.rule is not None or alarm.metric_data_queries or alarm.threshold_metric_id:
        raise UnsupportedAlarm("metric math, composite and anomaly-detection alarms are not evaluated locally")
    periods = int(alarm.evaluation_periods)
    return AlarmRule(
        statistic=str(alarm.extended_statistic or alarm.statistic),
        comparison=str(alarm.comparison_operator),
        threshold=float(alarm.threshold),
        evaluation_periods=periods,
        datapoints_to_alarm=int(alarm.datapoints_to_alarm or periods),
        treat_missing=str(alarm.treat_missing_data or "missing"),
        period=int(alarm.period),
    )


def evaluate_all(
    cw: CloudWatchBackend,
    now: float | None = None,
    cache: MetricCache | None = None,
    last: dict[str, float] | None = None,
) -> int:
    """Evaluate the metric alarms that are due; returns how many changed state.

    Args:
        cw: moto's CloudWatch.
        now: epoch seconds (default: now).
        cache: the caller's MetricCache (default: a new one).
        last: when each alarm was last evaluated (epoch seconds), kept by the caller; None: evaluate every alarm now.
            An alarm is due once per ``min(Period, 60)`` AWS seconds (CloudWatch evaluates an alarm once a minute,
            a high-resolution one once a period), and not within that long of its last state change: a state set
            with SetAlarmState stands until the next evaluation ("Metric alarms returns to their actual state
            quickly, often within seconds", SetAlarmState API reference) rather than for a few milliseconds.
    """
    now = time.time() if now is None else now
    if last is not None:
        for gone in set(last) - set(cw.alarms):
            del last[gone]
    alarms = [a for a in list(cw.alarms.values()) if a.rule is None and (last is None or _due(a, last, now))]
    rules: dict[str, AlarmRule] = {}
    for alarm in alarms:
        try:
            rules[alarm.name] = alarm_rule(alarm)
        except (UnsupportedAlarm, TypeError, ValueError) as exc:
            LOGGER.debug("alarm %s is not evaluated: %s", alarm.name, exc)
    if not rules:
        return 0
    keys = {metric_key(a.namespace, a.metric_name, _pairs(a.dimensions)) for a in alarms if a.name in rules}
    oldest = min(now - (r.evaluation_periods + 1) * _period(a) for a in alarms if (r := rules.get(a.name)))
    data = (cache or MetricCache()).samples(cw, keys, oldest)
    changed = 0
    for alarm in alarms:
        rule = rules.get(alarm.name)
        if rule is None:
            continue
        key = metric_key(alarm.namespace, alarm.metric_name, _pairs(alarm.dimensions))
        points = datapoints(data.get(key, []), rule.statistic, _period(alarm), rule.evaluation_periods, now, alarm.unit)
        verdict = evaluate(rule, points, alarm.state_value)
        if last is not None:
            last[alarm.name] = now
        if verdict.state is None or verdict.state == alarm.state_value:
            continue
        try:
            cw.set_alarm_state(alarm.name, verdict.reason, json.dumps(verdict.reason_data), verdict.state)
        except Exception:  # deleted meanwhile: the next pass no longer sees it
            LOGGER.debug("alarm %s vanished while it was evaluated", alarm.name, exc_info=True)
            continue
        changed += 1
        LOGGER.info("alarm %s: %s (%s)", alarm.name, verdict.state, verdict.reason)
    return changed


def _due(alarm: Alarm, last: dict[str, float], now: float) -> bool:
    every = clock.real_seconds(min(float(alarm.period), ALARM_MAX_EVALUATION_INTERVAL_S))
    if now - last.get(alarm.name, float("-inf")) < every:
        return False
    return alarm.name not in last or now - _epoch(alarm.state_updated_timestamp) >= every


def _period(alarm: Alarm) -> float:
    """The alarm's Period (AWS seconds) in wall-clock seconds."""
    return clock.real_seconds(float(alarm.period))


class AlarmEvaluator:
    """The evaluation loop: every ALARM_EVALUATION_INTERVAL_S of AWS time, at least LOOP_MIN_INTERVAL_S real."""

    def __init__(self) -> None:
        history.apply()
        self._cache = MetricCache()
        self._last: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cloudwatch-alarms", daemon=True)

    def start(self) -> AlarmEvaluator:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                evaluate_all(backend(), cache=self._cache, last=self._last)
            except Exception:  # one bad pass must not end evaluation for good
                LOGGER.exception("alarm evaluation failed")
            clock.pause(self._stop, ALARM_EVALUATION_INTERVAL_S, LOOP_MIN_INTERVAL_S)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
