"""EventBridge delivery of execution ends to the deployed rules' SNS topics, on moto's backends (mock_aws)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local_aws.constants import ACCOUNT_ID, REGION
from local_aws.events.delivery import EventDelivery, execution_status_event
from local_aws.sns_topics import TopicPublisher, read_inbox
from ops.status import notification_summary
from tests.conftest import load_event

MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:dogbreed-dev-train-deploy"
PATTERN = {
    "source": ["aws.states"],
    "detail-type": ["Step Functions Execution Status Change"],
    "detail": {"status": ["FAILED", "TIMED_OUT", "ABORTED", "SUCCEEDED"], "stateMachineArn": [MACHINE]},
}


def _describe(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "executionArn": f"{MACHINE.replace(':stateMachine:', ':execution:')}:run-1",
        "stateMachineArn": MACHINE,
        "name": "run-1",
        "status": status,
        "startDate": datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
        "stopDate": datetime(2026, 12, 2, 10, 5, tzinfo=UTC),
        "input": "{}",
        **extra,
    }


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        topic = sns.create_topic(Name="dogbreed-dev-notifications")["TopicArn"]
        events.put_rule(Name="dogbreed-dev-execution-status", EventPattern=json.dumps(PATTERN), State="ENABLED")
        events.put_targets(Rule="dogbreed-dev-execution-status", Targets=[{"Id": "topic", "Arn": topic}])
        yield {"sns": sns, "events": events, "topic": topic}


def test_the_event_has_the_shape_step_functions_sends(aws: dict[str, Any]) -> None:
    """Every field of AWS's documented event (tests/events), with the execution's own values."""
    event = execution_status_event(_describe("FAILED", error="GateFailed", cause="below the threshold"))
    documented = load_event("eventbridge_sfn_execution_failed")
    assert set(event) == set(documented)
    assert set(event["detail"]) == set(documented["detail"])
    assert event["detail-type"] == documented["detail-type"] and event["source"] == "aws.states"
    assert event["resources"] == [event["detail"]["executionArn"]]
    assert event["detail"]["startDate"] == int(datetime(2026, 12, 2, 10, 0, tzinfo=UTC).timestamp() * 1000)
    assert (event["detail"]["error"], event["detail"]["cause"]) == ("GateFailed", "below the threshold")


@pytest.mark.parametrize(
    ("status", "delivered"), [("FAILED", 1), ("TIMED_OUT", 1), ("ABORTED", 1), ("SUCCEEDED", 1), ("RUNNING", 0)]
)
def test_an_ended_execution_reaches_the_topic_as_its_event(
    aws: dict[str, Any], tmp_path: Path, status: str, delivered: int
) -> None:
    delivery = EventDelivery(TopicPublisher(tmp_path))
    event = execution_status_event(_describe(status))
    assert delivery.emit(event) == delivered
    records = read_inbox(tmp_path, "dogbreed-dev-notifications")
    assert len(records) == delivered
    if delivered:
        assert records[0]["TopicArn"] == aws["topic"]
        assert json.loads(records[0]["Message"]) == event  # no input transformer: the message is the event


def test_a_disabled_rule_or_another_machine_delivers_nothing(aws: dict[str, Any], tmp_path: Path) -> None:
    delivery = EventDelivery(TopicPublisher(tmp_path))
    other = _describe("FAILED", stateMachineArn=MACHINE + "-other")
    assert delivery.emit(execution_status_event(other)) == 0
    aws["events"].disable_rule(Name="dogbreed-dev-execution-status")
    assert delivery.emit(execution_status_event(_describe("FAILED"))) == 0
    assert read_inbox(tmp_path, "dogbreed-dev-notifications") == []


def test_a_target_that_is_not_sns_is_not_delivered(
    aws: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:somewhere"
    aws["events"].put_targets(Rule="dogbreed-dev-execution-status", Targets=[{"Id": "queue", "Arn": queue}])
    assert (
        EventDelivery(TopicPublisher(tmp_path)).emit(execution_status_event(_describe("FAILED"))) == 1
    )  # the topic only
    assert f"target {queue} is not delivered locally" in caplog.text


def test_a_deleted_topic_is_a_failed_delivery_not_an_error(aws: dict[str, Any], tmp_path: Path) -> None:
    aws["sns"].delete_topic(TopicArn=aws["topic"])
    assert TopicPublisher(tmp_path).publish(aws["topic"], "{}") is None
    assert read_inbox(tmp_path, "dogbreed-dev-notifications") == []


def test_status_summarises_a_failure_and_a_success() -> None:
    failed = json.dumps(load_event("eventbridge_sfn_execution_failed"))
    assert notification_summary(failed) == (
        "execution run-20261202-1015 FAILED: GateFailed: test top-1 0.41 is below the threshold 0.7"
    )
    succeeded = json.dumps(load_event("eventbridge_sfn_execution_succeeded"))
    assert (
        notification_summary(succeeded)
        == "execution run-20261202-1130 SUCCEEDED: serving dogbreed-dev-run-20261202-1130"
    )
    assert notification_summary("not json") == "not json"
