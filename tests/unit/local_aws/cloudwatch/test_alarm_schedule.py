"""When the evaluator looks at an alarm: once per minute (or period), and not right after SetAlarmState."""

from __future__ import annotations

import time

import pytest
from moto.cloudwatch.models import CloudWatchBackend

from local_aws.cloudwatch import history
from local_aws.cloudwatch.alarms import evaluate_all
from local_aws.constants import ACCOUNT_ID, REGION


@pytest.fixture(autouse=True)
def _fast_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_AWS_TIME_SCALE", "60")  # a 60-second period lasts one real second


def backend_with_alarm(name: str) -> CloudWatchBackend:
    history.apply()
    cw = CloudWatchBackend(REGION, ACCOUNT_ID)
    cw.put_metric_alarm(
        name, "Local/Tests", "Errors", "GreaterThanThreshold", 1, 60, 1.0, "Sum", "", [], [],
        treat_missing_data="notBreaching",
    )  # fmt: skip
    return cw


def test_a_new_alarm_is_evaluated_at_once_then_once_a_period() -> None:
    cw = backend_with_alarm("schedule-new")
    assert cw.alarms["schedule-new"].state_value == "INSUFFICIENT_DATA"
    last: dict[str, float] = {}
    assert evaluate_all(cw, last=last) == 1
    assert cw.alarms["schedule-new"].state_value == "OK"
    assert evaluate_all(cw, now=time.time() + 0.5, last=last) == 0  # evaluated, not due again yet
    assert last["schedule-new"] < time.time()


def test_set_alarm_state_stands_until_the_next_evaluation() -> None:
    cw = backend_with_alarm("schedule-set")
    last: dict[str, float] = {}
    evaluate_all(cw, last=last)
    time.sleep(1.05)
    cw.set_alarm_state("schedule-set", "set by a test", "{}", "ALARM")
    assert evaluate_all(cw, last=last) == 0  # due by the clock, but its state changed just now
    assert cw.alarms["schedule-set"].state_value == "ALARM"
    time.sleep(1.05)
    assert evaluate_all(cw, last=last) == 1  # a period later: back to what the data say
    assert cw.alarms["schedule-set"].state_value == "OK"
    summaries = [h["HistorySummary"] for h in history.history("schedule-set") if h["HistoryItemType"] == "StateUpdate"]
    assert summaries == [
        "Alarm updated from INSUFFICIENT_DATA to OK",
        "Alarm updated from OK to ALARM",
        "Alarm updated from ALARM to OK",
    ]


def test_deleted_alarms_leave_the_schedule() -> None:
    cw = backend_with_alarm("schedule-gone")
    last: dict[str, float] = {}
    evaluate_all(cw, last=last)
    cw.delete_alarms(["schedule-gone"])
    evaluate_all(cw, last=last)
    assert last == {}
