"""Notifications and the dashboard in template.yaml (issue 9): who may publish to the encrypted topic, which
executions and alarms reach it, and a dashboard that names only metrics the services publish."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from moto.events.models import EventPattern

from local_aws.cloudformation import Resolver
from local_aws.constants import ACCOUNT_ID as ACCOUNT
from tests.conftest import load_event
from tests.unit.stack.stack_helpers import statements

PREFIX = "dogbreed-dev"
TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:{PREFIX}-notifications"

# The metrics each service publishes, with the dimensions used here, from AWS's documentation:
# - docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html (endpoint invocation metrics);
# - docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html;
# - docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html (REST APIs).
# Training job metrics are the ASL's MetricDefinitions (SageMaker publishes each under /aws/sagemaker/TrainingJobs).
PUBLISHED = {
    "AWS/SageMaker": (
        {"Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "InvocationsPerInstance", "ModelLatency",
         "OverheadLatency"},
        ("EndpointName", "VariantName"),
    ),
    "AWS/Lambda": ({"Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"}, ("FunctionName",)),
    "AWS/ApiGateway": ({"Count", "Latency", "IntegrationLatency", "4XXError", "5XXError"}, ("ApiName", "Stage")),
}  # fmt: skip


def _alarms(resolved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in resolved["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}


# ---------------------------------------------------------------------------------------------- topic
def test_the_topic_is_encrypted_with_the_project_key_and_mails_only_when_asked(template: dict[str, Any]) -> None:
    without = Resolver(template).resolve(template["Resources"]["NotificationTopic"]["Properties"])
    assert without["KmsMasterKeyId"] == Resolver(template).resolve({"Ref": "ProjectKey"})
    assert "Subscription" not in without
    mailed = Resolver(template, {"NotificationEmail": "ml-team@example.com"}).resolve(
        template["Resources"]["NotificationTopic"]["Properties"]
    )
    assert mailed["Subscription"] == [{"Protocol": "email", "Endpoint": "ml-team@example.com"}]
    pattern = template["Parameters"]["NotificationEmail"]["AllowedPattern"]
    assert re.fullmatch(pattern, "ml-team@example.com") and re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "two@example.com,three@example.com")


def test_only_this_stacks_rule_and_alarms_may_publish_and_only_over_tls(resolved: dict[str, Any]) -> None:
    policy = resolved["Resources"]["NotificationTopicPolicy"]["Properties"]
    assert policy["Topics"] == [TOPIC_ARN]
    by_sid = {stmt["Sid"]: stmt for stmt in statements(policy["PolicyDocument"])}
    rule_arn = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{PREFIX}-execution-status"
    assert by_sid["ExecutionStatusRulePublishes"]["Principal"] == {"Service": "events.amazonaws.com"}
    assert by_sid["ExecutionStatusRulePublishes"]["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
    alarms = by_sid["StackAlarmsPublish"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{PREFIX}-*"
    deny = by_sid["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    for stmt in by_sid.values():
        assert stmt["Action"] == "sns:Publish" and stmt["Resource"] == TOPIC_ARN, stmt["Sid"]


def test_every_alarm_notifies_the_topic_and_its_name_lets_cloudwatch_publish(resolved: dict[str, Any]) -> None:
    alarms = _alarms(resolved)
    assert {p["MetricName"] for p in alarms.values()} >= {"Errors", "Throttles", "5XXError", "Invocation5XXErrors",
                                                           "ModelLatency"}  # fmt: skip
    allowed = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{PREFIX}-"
    for logical_id, props in alarms.items():
        assert props["AlarmActions"] == [TOPIC_ARN], logical_id
        # The topic policy's and the key policy's aws:SourceArn pattern covers the alarm, or its messages are dropped.
        assert f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{props['AlarmName']}".startswith(allowed), logical_id


# ---------------------------------------------------------------------------------------------- execution events
def _pattern(resolved: dict[str, Any]) -> EventPattern:
    # moto's EventBridge pattern matcher: the same one the local runtime's event delivery uses.
    return EventPattern.load(json.dumps(resolved["Resources"]["ExecutionStatusRule"]["Properties"]["EventPattern"]))


@pytest.mark.parametrize(
    ("fixture", "status", "delivered"),
    [
        ("eventbridge_sfn_execution_failed", "FAILED", True),
        ("eventbridge_sfn_execution_failed", "TIMED_OUT", True),
        ("eventbridge_sfn_execution_failed", "ABORTED", True),
        ("eventbridge_sfn_execution_succeeded", "SUCCEEDED", True),
        ("eventbridge_sfn_execution_succeeded", "RUNNING", False),  # a start is not news
    ],
)
def test_the_rule_sends_the_ends_of_this_stacks_executions(
    resolved: dict[str, Any], fixture: str, status: str, delivered: bool
) -> None:
    event = load_event(fixture)
    event["detail"]["status"] = status
    assert _pattern(resolved).matches_event(event) is delivered
    other = copy.deepcopy(event)
    other["detail"]["stateMachineArn"] = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:someone-elses"
    assert _pattern(resolved).matches_event(other) is False
    rule = resolved["Resources"]["ExecutionStatusRule"]["Properties"]
    assert rule["State"] == "ENABLED"
    assert [t["Arn"] for t in rule["Targets"]] == [TOPIC_ARN]
    assert event["detail"]["stateMachineArn"] == rule["EventPattern"]["detail"]["stateMachineArn"][0]


def test_a_success_message_names_the_deployed_version(asl: dict[str, Any]) -> None:
    """The message is the event: a success's detail.output is the ASL's Deployed output, which names the version."""
    output = json.loads(load_event("eventbridge_sfn_execution_succeeded")["detail"]["output"])
    deployed = {key.removesuffix(".$") for key in asl["States"]["Deployed"]["Parameters"]}
    assert set(output) == deployed  # the fixture has the shape the ASL really ends with
    assert "TrainingJobName" in deployed and "Metrics" in deployed


# ---------------------------------------------------------------------------------------------- dashboard
def _widgets(resolved: dict[str, Any]) -> list[dict[str, Any]]:
    body = json.loads(resolved["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"])
    return list(body["widgets"])


def test_the_dashboard_names_only_metrics_that_are_published_for_this_stacks_resources(
    resolved: dict[str, Any], asl: dict[str, Any]
) -> None:
    resources = resolved["Resources"]
    names = {
        "EndpointName": PREFIX,
        "VariantName": "AllTraffic",  # the ASL's one variant
        "FunctionName": resources["InferenceFunction"]["Properties"]["FunctionName"],
        "ApiName": resources["InferenceApi"]["Properties"]["Name"],
        "Stage": resources["InferenceApi"]["Properties"]["StageName"],
    }
    training_metrics = {
        d["Name"]
        for state in _all_states(asl)
        for d in (state.get("Parameters") or {}).get("AlgorithmSpecification", {}).get("MetricDefinitions", [])
    }
    assert training_metrics, "the ASL's MetricDefinitions were not found"
    seen: set[tuple[str, str]] = set()
    for widget in _widgets(resolved):
        ids = set()
        for row in widget["properties"]["metrics"]:
            options = row[-1] if isinstance(row[-1], dict) else {}
            ids.add(options.get("id"))
            if "expression" in options:
                for metric in re.findall(r'MetricName=\\?"([^"\\]+)', options["expression"]):
                    assert metric in training_metrics, metric
                    seen.add(("/aws/sagemaker/TrainingJobs", metric))
                for ref in re.findall(r"\b(m\d+)\b", options["expression"]):
                    assert ref in {r[-1].get("id") for r in widget["properties"]["metrics"] if isinstance(r[-1], dict)}
                continue
            namespace, metric, *rest = [part for part in row if not isinstance(part, dict)]
            published, dimensions = PUBLISHED[namespace]
            assert metric in published, (namespace, metric)
            given = dict(zip(rest[::2], rest[1::2], strict=True))
            assert tuple(given) == dimensions, (namespace, metric, given)
            assert all(given[d] == names[d] for d in dimensions), (namespace, metric, given)
            seen.add((namespace, metric))
    # What the issue asks the dashboard to cover.
    assert {("AWS/SageMaker", m) for m in ("Invocations", "ModelLatency", "Invocation4XXErrors",
                                             "Invocation5XXErrors", "InvocationsPerInstance")} <= seen  # fmt: skip
    assert {("AWS/Lambda", m) for m in ("Duration", "Errors", "Throttles", "ConcurrentExecutions")} <= seen
    assert {("AWS/ApiGateway", m) for m in ("Count", "Latency", "4XXError", "5XXError")} <= seen
    assert any(namespace == "/aws/sagemaker/TrainingJobs" for namespace, _ in seen)


def _all_states(asl: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for state in asl["States"].values():
        found.append(state)
        for branch in state.get("Branches", []):
            found.extend(_all_states(branch))
        if "ItemProcessor" in state:
            found.extend(_all_states(state["ItemProcessor"]))
    return found
