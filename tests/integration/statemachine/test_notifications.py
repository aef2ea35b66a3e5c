"""Notifications on the local runtime: the template's topic, rule and dashboard are deployed where users' tools see
them, and an execution that fails produces the SNS message AWS would send, which ``ops status`` shows."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from local_aws.constants import StateLayout
from local_aws.sns_topics import read_inbox
from ops.status import status_lines
from ops.target import local_target_at
from tests.integration.local_aws_fixtures import Aws
from tests.integration.statemachine.sfn_helpers import Stack, run, sfn_event

WAIT_S = 10.0  # the execution recorder polls once a second


def _topic_name(stack: Stack) -> str:
    return stack.outputs["NotificationTopicArn"].rsplit(":", 1)[-1]


def _published(aws: Aws, stack: Stack, execution_name: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_S
    while True:
        found = [
            record
            for record in read_inbox(StateLayout(aws.home).notifications, _topic_name(stack), last=1000)
            if json.loads(record["Message"]).get("detail", {}).get("name") == execution_name
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_the_topic_rule_and_dashboard_are_deployed_where_users_tools_see_them(local_aws: Aws) -> None:
    stack = Stack.of(local_aws)
    topic = stack.outputs["NotificationTopicArn"]
    sns, events, cloudwatch = (local_aws.client(name) for name in ("sns", "events", "cloudwatch"))
    assert topic in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attributes["KmsMasterKeyId"]  # encrypted with the project key, as the template says
    assert json.loads(attributes["Policy"])["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    # Other tests deploy the template under other environment names: this stack's rule is the one with its prefix.
    (rule,) = [
        r for r in events.list_rules()["Rules"] if r["Name"] == f"{stack.outputs['ResourcePrefix']}-execution-status"
    ]
    assert json.loads(rule["EventPattern"])["detail"]["stateMachineArn"] == [stack.machine_arn]
    assert [t["Arn"] for t in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]] == [topic]
    dashboard = cloudwatch.get_dashboard(DashboardName=stack.outputs["DashboardName"])
    assert len(json.loads(dashboard["DashboardBody"])["widgets"]) >= 6


def test_a_failed_execution_is_published_to_the_topic_and_status_shows_it(local_aws: Aws) -> None:
    stack = Stack.of(local_aws)
    # Training must be an object (docs/CONTRACTS.md §6): the ASL's validation fails this input before any job starts.
    payload = {**sfn_event("local_small", stack), "Training": "two instances please"}
    failed = run(stack, payload, f"notify-{uuid.uuid4().hex[:8]}")
    assert failed.status == "FAILED" and failed.error
    (record,) = _published(local_aws, stack, failed.name)
    assert record["TopicArn"] == stack.outputs["NotificationTopicArn"]
    event = json.loads(record["Message"])
    assert event["detail-type"] == "Step Functions Execution Status Change" and event["source"] == "aws.states"
    assert event["detail"]["status"] == "FAILED"
    assert (event["detail"]["error"], event["detail"]["cause"]) == (failed.error, failed.cause)
    runtime_stack = local_aws.runtime.stack
    assert runtime_stack is not None
    target = local_target_at(StateLayout(local_aws.home), runtime_stack.stack_name, local_aws.url, local_aws.api_url)
    shown = "\n".join(status_lines(target))
    assert f"execution {failed.name} FAILED: {failed.error}" in shown
