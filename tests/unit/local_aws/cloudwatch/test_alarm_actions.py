"""Alarm actions: a transition publishes CloudWatch's notification to the SNS topics of the new state's actions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_aws.cloudwatch import history
from local_aws.cloudwatch.actions import AlarmActions
from local_aws.constants import ACCOUNT_ID, REGION
from local_aws.sns_topics import TopicPublisher, read_inbox

NAME = "dogbreed-dev-function-errors"


@pytest.fixture
def clients(tmp_path: Path) -> Iterator[dict[str, Any]]:
    history.apply()
    with mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        cloudwatch = boto3.client("cloudwatch", region_name=REGION)
        topic = sns.create_topic(Name="dogbreed-dev-notifications")["TopicArn"]
        actions = AlarmActions(TopicPublisher(tmp_path)).start()
        try:
            yield {"sns": sns, "cloudwatch": cloudwatch, "topic": topic}
        finally:
            actions.stop()


def _alarm(cloudwatch: Any, topic: str, **extra: Any) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=NAME, AlarmDescription="the function failed", Namespace="AWS/Lambda", MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": "dogbreed-dev-inference"}], Statistic="Sum", Period=300,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="notBreaching", AlarmActions=[topic], **extra,
    )  # fmt: skip


def test_entering_alarm_publishes_cloudwatchs_message_to_the_alarm_actions(
    clients: dict[str, Any], tmp_path: Path
) -> None:
    _alarm(clients["cloudwatch"], clients["topic"])
    clients["cloudwatch"].set_alarm_state(AlarmName=NAME, StateValue="ALARM", StateReason="2 errors in 5 minutes")
    (record,) = read_inbox(tmp_path, "dogbreed-dev-notifications")
    assert record["Subject"] == f'ALARM: "{NAME}" in US East (N. Virginia)'
    message = json.loads(record["Message"])
    assert (message["OldStateValue"], message["NewStateValue"]) == ("INSUFFICIENT_DATA", "ALARM")
    assert message["NewStateReason"] == "2 errors in 5 minutes"
    assert message["AlarmArn"] == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:{NAME}"
    assert message["Trigger"]["Dimensions"] == [{"value": "dogbreed-dev-inference", "name": "FunctionName"}]
    assert message["Trigger"]["MetricName"] == "Errors" and message["Trigger"]["Threshold"] == 1.0


def test_no_message_for_a_state_without_actions_or_with_actions_disabled(
    clients: dict[str, Any], tmp_path: Path
) -> None:
    _alarm(clients["cloudwatch"], clients["topic"])
    clients["cloudwatch"].set_alarm_state(AlarmName=NAME, StateValue="OK", StateReason="no OKActions")
    assert read_inbox(tmp_path, "dogbreed-dev-notifications") == []
    _alarm(clients["cloudwatch"], clients["topic"], ActionsEnabled=False)
    clients["cloudwatch"].set_alarm_state(AlarmName=NAME, StateValue="ALARM", StateReason="actions are off")
    assert read_inbox(tmp_path, "dogbreed-dev-notifications") == []
