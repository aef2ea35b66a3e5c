"""Alarm actions: on a state transition, CloudWatch publishes the alarm's notification to each SNS topic among the
actions for the new state (AlarmActions for ALARM, OKActions for OK, InsufficientDataActions for INSUFFICIENT_DATA),
when ActionsEnabled. The message is CloudWatch's JSON (CloudWatch User Guide, "Alarm actions": the SNS notification
carries AlarmName, AlarmDescription, AWSAccountId, NewStateValue, NewStateReason, StateChangeTime, Region, AlarmArn,
OldStateValue and the Trigger), and the subject is ``ALARM: "<name>" in <region name>``.

Only SNS actions are carried out locally; Auto Scaling, EC2 and Systems Manager actions are not (none is used here).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import Alarm

from local_aws.cloudwatch import history
from local_aws.constants import ACCOUNT_ID, REGION_DISPLAY_NAME
from local_aws.sns_topics import TopicPublisher

LOGGER = logging.getLogger("local_aws.cloudwatch")
ACTIONS_FOR = {"ALARM": "alarm_actions", "OK": "ok_actions", "INSUFFICIENT_DATA": "insufficient_data_actions"}


def _stamp(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    return str(value)


def alarm_message(alarm: Alarm, old_state: str) -> dict[str, Any]:
    """The JSON CloudWatch publishes to an alarm action's topic."""
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": ACCOUNT_ID,
        "AlarmConfigurationUpdatedTimestamp": _stamp(alarm.configuration_updated_timestamp),
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": _stamp(alarm.state_updated_timestamp),
        "Region": REGION_DISPLAY_NAME,
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old_state,
        "OKActions": list(alarm.ok_actions or []),
        "AlarmActions": list(alarm.alarm_actions or []),
        "InsufficientDataActions": list(alarm.insufficient_data_actions or []),
        "Trigger": {
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "StatisticType": "ExtendedStatistic" if alarm.extended_statistic else "Statistic",
            "Statistic": alarm.extended_statistic or alarm.statistic,
            "Unit": alarm.unit,
            "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions or []],
            "Period": alarm.period,
            "EvaluationPeriods": alarm.evaluation_periods,
            "DatapointsToAlarm": alarm.datapoints_to_alarm,
            "ComparisonOperator": alarm.comparison_operator,
            "Threshold": alarm.threshold,
            "TreatMissingData": alarm.treat_missing_data,
        },
    }


class AlarmActions:
    """Publishes each transition to the SNS topics among the new state's actions."""

    def __init__(self, topics: TopicPublisher) -> None:
        self.topics = topics

    def start(self) -> AlarmActions:
        history.on_state_change(self.notify)
        return self

    def stop(self) -> None:
        history.remove_state_listener(self.notify)

    def notify(self, alarm: Alarm, old_state: str) -> int:
        """Publish one transition; returns how many topics got it."""
        if not alarm.actions_enabled:
            return 0
        actions = [str(a) for a in getattr(alarm, ACTIONS_FOR.get(alarm.state_value, ""), None) or []]
        topics = [arn for arn in actions if self.topics.is_local_topic(arn)]
        for arn in set(actions) - set(topics):  # e.g. target tracking's scaling policies, on every transition
            LOGGER.debug("alarm %s: action %s is not carried out here (only SNS topics are)", alarm.name, arn)
        if not topics:
            return 0
        message = json.dumps(alarm_message(alarm, old_state))
        subject = f'{alarm.state_value}: "{alarm.name}" in {REGION_DISPLAY_NAME}'[:100]  # SNS subjects: 100 chars
        return sum(self.topics.publish(arn, message, subject) is not None for arn in topics)
