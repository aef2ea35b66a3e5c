"""CloudWatch's alarm math: periods, statistics, M out of N, TreatMissingData and the reason text."""

from __future__ import annotations

import pytest

from local_aws.cloudwatch.evaluation import (
    ALARM,
    INSUFFICIENT_DATA,
    OK,
    AlarmRule,
    Datapoint,
    Sample,
    UnsupportedAlarm,
    datapoints,
    evaluate,
    statistic,
)

PERIOD = 60.0
NOW = 1_800_000_030.0  # 30 s into a period; the last complete one starts at NOW - 30 - 60


def rule(**overrides: object) -> AlarmRule:
    values: dict[str, object] = {
        "statistic": "Sum",
        "comparison": "GreaterThanOrEqualToThreshold",
        "threshold": 1.0,
        "evaluation_periods": 3,
        "datapoints_to_alarm": 3,
        "treat_missing": "missing",
    }
    values.update(overrides)
    return AlarmRule(**values)  # type: ignore[arg-type]


def points(*values: float | None) -> list[Datapoint]:
    """Datapoints oldest first, one per period."""
    return [Datapoint(1_800_000_000.0 + i * PERIOD, v, 1.0 if v is not None else 0.0) for i, v in enumerate(values)]


def test_periods_are_aligned_and_only_complete_ones_count() -> None:
    end = NOW - 30  # the current period [end, end + 60) is not complete
    samples = [
        Sample(end - 1, value=2.0),  # last complete period
        Sample(end - 59, value=3.0),  # same period
        Sample(end - 61, value=7.0),  # the one before
        Sample(end + 5, value=100.0),  # current, incomplete: not evaluated yet
    ]
    got = datapoints(samples, "Sum", PERIOD, 3, NOW)
    assert [p.start for p in got] == [end - 180, end - 120, end - 60]
    assert [p.value for p in got] == [None, 7.0, 5.0]


def test_unit_filter_and_statistic_sets() -> None:
    end = NOW - 30
    samples = [
        Sample(end - 10, value=4.0, unit="Count"),
        Sample(end - 20, value=99.0, unit="Seconds"),
        Sample(end - 30, stats=(2.0, 10.0, 1.0, 9.0), unit="Count"),
    ]
    (only,) = datapoints(samples, "Average", PERIOD, 1, NOW, unit="Count")
    assert only.value == pytest.approx(14.0 / 3.0)
    assert only.sample_count == 3.0


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Sum", 10.0), ("SampleCount", 4.0), ("Average", 2.5), ("Minimum", 1.0), ("Maximum", 4.0), ("p50", 2.0)],
)
def test_statistics(name: str, expected: float) -> None:
    samples = [Sample(0.0, value=v) for v in (4.0, 1.0, 3.0, 2.0)]
    assert statistic(name, samples) == (expected, 4.0)


def test_percentile_needs_raw_values() -> None:
    assert statistic("p99", [Sample(0.0, stats=(3.0, 6.0, 1.0, 3.0))]) == (None, 0.0)


def test_m_out_of_n_alarms_only_with_m_breaching() -> None:
    two_of_three = rule(datapoints_to_alarm=2)
    assert evaluate(two_of_three, points(0.0, 5.0, 0.0), OK).state == OK
    verdict = evaluate(two_of_three, points(5.0, 0.0, 5.0), OK)
    assert verdict.state == ALARM
    assert verdict.reason.startswith("Threshold Crossed: 2 out of the last 3 datapoints [5.0 (")
    assert "were greater than or equal to the threshold (1.0) (minimum 2 datapoints for OK -> ALARM transition)." in (
        verdict.reason
    )
    assert verdict.reason_data["recentDatapoints"] == [5.0, 0.0, 5.0]


def test_back_below_threshold_is_ok() -> None:
    verdict = evaluate(rule(), points(0.0, 0.0, 0.0), ALARM)
    assert verdict.state == OK
    assert "3 out of the last 3 datapoints" in verdict.reason
    assert "were not greater than or equal to the threshold (1.0) (minimum 1 datapoint for ALARM -> OK" in (
        verdict.reason
    )


@pytest.mark.parametrize(
    ("operator", "value", "breaches"),
    [
        ("GreaterThanThreshold", 1.0, False),
        ("GreaterThanThreshold", 1.5, True),
        ("GreaterThanOrEqualToThreshold", 1.0, True),
        ("LessThanThreshold", 1.0, False),
        ("LessThanThreshold", 0.5, True),
        ("LessThanOrEqualToThreshold", 1.0, True),
    ],
)
def test_comparison_operators(operator: str, value: float, breaches: bool) -> None:
    one = rule(comparison=operator, evaluation_periods=1, datapoints_to_alarm=1)
    assert evaluate(one, points(value), OK).state == (ALARM if breaches else OK)


def test_all_missing_per_treat_missing_data() -> None:
    empty = points(None, None, None)
    missing = evaluate(rule(treat_missing="missing"), empty, OK)
    assert missing.state == INSUFFICIENT_DATA
    assert missing.reason == "Insufficient Data: 3 datapoints were unknown."
    assert evaluate(rule(treat_missing="ignore"), empty, ALARM).state is None  # keeps the current state
    not_breaching = evaluate(rule(treat_missing="notBreaching"), empty, ALARM)
    assert not_breaching.state == OK
    assert not_breaching.reason == (
        "Threshold Crossed: no datapoints were received for 3 periods and 3 missing datapoints were treated as "
        "[NonBreaching]."
    )
    breaching = evaluate(rule(treat_missing="breaching"), empty, OK)
    assert breaching.state == ALARM
    assert breaching.reason.endswith("3 missing datapoints were treated as [Breaching].")


def test_some_missing_are_filled_only_for_breaching_and_not_breaching() -> None:
    partial = points(5.0, None, None)
    assert evaluate(rule(treat_missing="breaching"), partial, OK).state == ALARM
    filled = evaluate(rule(treat_missing="notBreaching"), partial, OK)
    assert filled.state == OK
    assert filled.reason.startswith("Threshold Crossed: 1 datapoint was received for 3 periods and 2 missing")
    # missing / ignore: only the real datapoints are evaluated, and one breaching datapoint is not 3 of 3.
    assert evaluate(rule(treat_missing="missing"), partial, INSUFFICIENT_DATA).state == OK
    assert evaluate(rule(treat_missing="missing", datapoints_to_alarm=1), partial, OK).state == ALARM


def test_unsupported_alarms_are_refused_by_name() -> None:
    with pytest.raises(UnsupportedAlarm, match="statistic 'tm99'"):
        rule(statistic="tm99")
    with pytest.raises(UnsupportedAlarm, match="LessThanLowerOrGreaterThanUpperThreshold"):
        rule(comparison="LessThanLowerOrGreaterThanUpperThreshold")
    with pytest.raises(UnsupportedAlarm, match="DatapointsToAlarm"):
        rule(datapoints_to_alarm=4)


def test_reason_names_the_fixed_transition_and_data_has_cloudwatchs_fields() -> None:
    # CloudWatch writes "OK -> ALARM" / "ALARM -> OK" whatever state the alarm leaves (INSUFFICIENT_DATA included).
    verdict = evaluate(rule(period=300), points(5.0, 5.0, 5.0), INSUFFICIENT_DATA)
    assert verdict.reason.endswith("(minimum 3 datapoints for OK -> ALARM transition).")
    assert evaluate(rule(), points(0.0, 0.0, 0.0), INSUFFICIENT_DATA).reason.endswith("for ALARM -> OK transition).")
    data = verdict.reason_data
    assert (data["version"], data["statistic"], data["period"], data["threshold"]) == ("1.0", "Sum", 300, 1.0)
    assert data["startDate"] == "2027-01-15T08:00:00.000+0000"
    assert data["queryDate"].endswith("+0000")
