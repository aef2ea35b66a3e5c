"""EventBridge's part the local runtime plays: the events AWS services emit, delivered to the SNS targets of the rules
deployed in the local EventBridge.

Why it exists: moto stores rules and targets and runs its own pattern matcher, but nothing in moto emits the events
AWS services do (its Step Functions sends no "Step Functions Execution Status Change"), and its delivery raises
NotImplementedError for an SNS target (local-aws-building-blocks.md). So the execution recorder hands each ended
execution here; the rules are read back from moto's EventBridge (what ``aws events list-rules`` shows), matched with
moto's ``EventPattern`` (the maintained matcher, not a second one), and each match is published to moto's SNS as
the service's own delivery: no caller's credentials, no caller's IAM. As on AWS with no input transformer, the
message is the event, as JSON.

Publishing, and the inbox that stands in for the topic's subscribers, are local_aws/sns_topics.py. Not emulated:
the topic policy (AWS drops a delivery the policy does not allow, counting FailedInvocations), input transformers
(a target with one is delivered untransformed, with a warning), and targets other than SNS.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from moto.events.models import events_backends

from local_aws.constants import ACCOUNT_ID, EXECUTION_STATUS_CHANGE, REGION
from local_aws.sns_topics import TopicPublisher

LOGGER = logging.getLogger("local_aws.events")


def _millis(value: Any) -> int | None:
    """DescribeExecution's dates (datetime, epoch seconds or ISO text) as the event's epoch milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, int | float):
        return int(float(value) * 1000)
    return int(datetime.fromisoformat(str(value)).timestamp() * 1000)


def execution_status_event(describe: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    """The EventBridge event Step Functions sends when a standard execution changes status.

    The shape is AWS's (Step Functions developer guide, "Automating Step Functions event delivery with EventBridge":
    detail-type "Step Functions Execution Status Change", source aws.states, the execution ARN as the one resource,
    and a detail holding DescribeExecution's fields, dates as epoch milliseconds, and input/output as JSON strings).
    """
    arn = str(describe["executionArn"])
    status = str(describe["status"])
    detail = {
        "executionArn": arn,
        "stateMachineArn": describe.get("stateMachineArn"),
        "name": describe.get("name"),
        "status": status,
        "startDate": _millis(describe.get("startDate")),
        "stopDate": _millis(describe.get("stopDate")),
        "input": describe.get("input"),
        "output": describe.get("output"),
        "stateMachineVersionArn": describe.get("stateMachineVersionArn"),
        "stateMachineAliasArn": describe.get("stateMachineAliasArn"),
        "redriveCount": describe.get("redriveCount", 0),
        "redriveDate": _millis(describe.get("redriveDate")),
        "redriveStatus": describe.get("redriveStatus"),
        "redriveStatusReason": describe.get("redriveStatusReason"),
        "inputDetails": {"included": "input" in describe},
        "outputDetails": {"included": True} if describe.get("output") is not None else None,
        "error": describe.get("error"),
        "cause": describe.get("cause"),
    }
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": EXECUTION_STATUS_CHANGE,
        "source": "aws.states",
        "account": ACCOUNT_ID,
        "time": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [arn],
        "detail": detail,
    }


class EventDelivery:
    """Delivers events to the SNS targets of the default bus's enabled rules."""

    def __init__(self, topics: TopicPublisher, account: str = ACCOUNT_ID, region: str = REGION) -> None:
        self.topics = topics
        self.account = account
        self.region = region

    def emit(self, event: dict[str, Any]) -> int:
        """Deliver one event to every matching rule's SNS targets; returns how many messages were published."""
        bus = events_backends[self.account][self.region].event_buses.get("default")
        if bus is None:
            return 0
        published = 0
        for rule in list(bus.rules.values()):
            pattern = rule.event_pattern
            if rule.state != "ENABLED" or pattern is None or not pattern.matches_event(event):  # type: ignore[arg-type]
                continue
            for target in rule.targets:
                arn = str(target.get("Arn", ""))
                if not self.topics.is_local_topic(arn):
                    LOGGER.warning("rule %s: target %s is not delivered locally (only SNS targets are)", rule.name, arn)
                    continue
                if target.get("InputTransformer") or target.get("Input") or target.get("InputPath"):
                    LOGGER.warning("rule %s: target %s gets the event untransformed locally", rule.name, arn)
                if self.topics.publish(arn, json.dumps(event)) is not None:
                    published += 1
        return published
