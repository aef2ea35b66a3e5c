"""Alarm history and the alarm lifecycle moto leaves out: DescribeAlarmHistory, the initial state, updates.

moto 5.2.5 answers DescribeAlarmHistory with a crash (it has no such method), starts a new alarm in ``OK``, and
replaces an alarm's state on PutMetricAlarm. CloudWatch (PutMetricAlarm API reference): a new alarm starts in
INSUFFICIENT_DATA ("Unchecked: Initial alarm creation"); "When you update an existing alarm, its state is left
unchanged, but the update completely overwrites the previous configuration"; every state change and every
configuration change is an AlarmHistoryItem (botocore's cloudwatch model: HistoryItemType ConfigurationUpdate |
StateUpdate | Action; HistoryData is JSON). ``apply()`` patches moto's CloudWatch in this process so that every
state change, the evaluator's and a user's SetAlarmState alike, goes through ``set_alarm_state`` and is recorded
here. The patch is on moto's own classes (as ``stepfunctions/interpreter.py`` patches moto's interpreter), so the
answers keep moto's wire serialisation for every protocol botocore speaks (CBOR, JSON, query).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.exceptions import ValidationError
from moto.cloudwatch.models import Alarm, CloudWatchBackend
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult

from local_aws.cloudwatch.evaluation import INSUFFICIENT_DATA

_LOCK = threading.Lock()
_HISTORY: list[dict[str, Any]] = []  # oldest first; moto's backends are process-global, so is this
_APPLIED = False
# Called after each state transition (local_aws/cloudwatch/actions.py publishes the alarm's actions).
_LISTENERS: list[Callable[[Alarm, str], object]] = []
LOGGER = logging.getLogger("local_aws.cloudwatch")
# DescribeAlarmHistory MaxRecords: 1-100, default 100 (botocore: MaxRecords min 1, max 100).
MAX_RECORDS = 100
HISTORY_ITEM_TYPES = (
    "ConfigurationUpdate",
    "StateUpdate",
    "Action",
    "AlarmContributorStateUpdate",
    "AlarmContributorAction",
)


def _now() -> datetime:
    return datetime.now(UTC)


def _record(name: str, item_type: str, summary: str, data: dict[str, Any]) -> None:
    item = {
        "AlarmName": name,
        "AlarmType": "MetricAlarm",
        "Timestamp": _now(),
        "HistoryItemType": item_type,
        "HistorySummary": summary,
        "HistoryData": json.dumps(data),
    }
    with _LOCK:
        _HISTORY.append(item)


def _state(alarm: Alarm) -> dict[str, Any]:
    state: dict[str, Any] = {"stateValue": alarm.state_value, "stateReason": alarm.state_reason}
    try:
        reason_data = json.loads(alarm.state_reason_data or "{}")
    except ValueError:
        reason_data = {}
    if reason_data:
        state["stateReasonData"] = reason_data
    return state


def history(name: str | None = None) -> list[dict[str, Any]]:
    """Every recorded item (of alarm ``name``), oldest first."""
    with _LOCK:
        return [dict(i) for i in _HISTORY if name is None or i["AlarmName"] == name]


def _set_alarm_state(original: Any) -> Any:
    def set_alarm_state(
        self: CloudWatchBackend, alarm_name: str, reason: str, reason_data: str, state_value: str
    ) -> None:
        alarm = self.alarms.get(alarm_name)
        old = _state(alarm) if alarm is not None else None
        original(self, alarm_name, reason, reason_data, state_value)
        alarm = self.alarms[alarm_name]
        assert old is not None
        _record(
            alarm_name,
            "StateUpdate",
            f"Alarm updated from {old['stateValue']} to {alarm.state_value}",
            {"version": "1.0", "oldState": old, "newState": _state(alarm)},
        )
        if old["stateValue"] != alarm.state_value:
            for listener in list(_LISTENERS):
                try:
                    listener(alarm, old["stateValue"])
                except Exception:  # an action that fails must not undo the state change
                    LOGGER.warning("alarm %s: a state-change listener failed", alarm_name, exc_info=True)

    return set_alarm_state


def on_state_change(listener: Callable[[Alarm, str], object]) -> None:
    """Call ``listener(alarm, old_state)`` after every alarm state transition (the alarm's actions run then)."""
    _LISTENERS.append(listener)


def remove_state_listener(listener: Callable[[Alarm, str], object]) -> None:
    with contextlib.suppress(ValueError):
        _LISTENERS.remove(listener)


def _put_metric_alarm(original: Any) -> Any:
    def put_metric_alarm(self: CloudWatchBackend, name: str, *args: Any, **kwargs: Any) -> Alarm:
        previous = self.alarms.get(name)
        alarm: Alarm = original(self, name, *args, **kwargs)
        if previous is None:
            alarm.state_value = INSUFFICIENT_DATA
            _record(name, "ConfigurationUpdate", f'Alarm "{name}" created', {"version": "1.0", "type": "Create"})
        else:
            alarm.state_value = previous.state_value
            alarm.state_reason = previous.state_reason
            alarm.state_reason_data = previous.state_reason_data
            alarm.state_updated_timestamp = previous.state_updated_timestamp
            _record(name, "ConfigurationUpdate", f'Alarm "{name}" updated', {"version": "1.0", "type": "Update"})
        return alarm

    return put_metric_alarm


def _as_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def describe_alarm_history(self: CloudWatchResponse) -> ActionResult:
    """DescribeAlarmHistory: newest first unless ScanBy=TimestampAscending, paged by MaxRecords/NextToken."""
    name = self._get_param("AlarmName")
    item_type = self._get_param("HistoryItemType")
    if item_type and item_type not in HISTORY_ITEM_TYPES:
        raise ValidationError(
            f"1 validation error detected: Value '{item_type}' at 'historyItemType' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(HISTORY_ITEM_TYPES)}]"
        )
    raw = self._get_param("MaxRecords")
    max_records = MAX_RECORDS if raw in (None, "") else int(raw)
    if not 1 <= max_records <= MAX_RECORDS:
        bound = "greater than or equal to 1" if max_records < 1 else f"less than or equal to {MAX_RECORDS}"
        raise ValidationError(
            f"1 validation error detected: Value '{max_records}' at 'maxRecords' failed to satisfy constraint: "
            f"Member must have value {bound}"
        )
    start, end = _as_datetime(self._get_param("StartDate")), _as_datetime(self._get_param("EndDate"))
    types = self._get_param("AlarmTypes") or []
    items = [
        i
        for i in history(name)
        if (not item_type or i["HistoryItemType"] == item_type)
        and (not types or i["AlarmType"] in types)
        and (start is None or i["Timestamp"] >= start)
        and (end is None or i["Timestamp"] <= end)
    ]
    if self._get_param("ScanBy") != "TimestampAscending":
        items.reverse()
    token = self._get_param("NextToken")
    offset = int(token) if token and str(token).isdigit() else 0
    page = items[offset : offset + max_records]
    result: dict[str, Any] = {"AlarmHistoryItems": page}
    if offset + max_records < len(items):
        result["NextToken"] = str(offset + max_records)
    return ActionResult(result)


def apply() -> None:
    """Patch moto's CloudWatch in this process (idempotent)."""
    global _APPLIED
    with _LOCK:
        if _APPLIED:
            return
        _APPLIED = True
    CloudWatchBackend.set_alarm_state = _set_alarm_state(CloudWatchBackend.set_alarm_state)  # type: ignore[method-assign]
    CloudWatchBackend.put_metric_alarm = _put_metric_alarm(CloudWatchBackend.put_metric_alarm)  # type: ignore[method-assign]
    CloudWatchResponse.describe_alarm_history = describe_alarm_history  # type: ignore[attr-defined]
