"""``status`` and ``logs``: what the stack's pipeline did, read through the same APIs on both targets."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from local_aws.constants import EXECUTION_STATUS_CHANGE, TRAINING_LOG_GROUP, StateLayout
from local_aws.sns_topics import read_inbox
from ops.target import OpsError, Target

# The endpoint's tags the pipeline writes (statemachine/pipeline.asl.json, TagEndpoint): the job it serves, its score.
TRAINING_JOB_TAG = "dogbreed:training-job"
TEST_TOP1_TAG = "dogbreed:test-top1"


def endpoint_tags(sagemaker: Any, endpoint: dict[str, Any]) -> dict[str, str]:
    """The tags of a described endpoint, as a dict."""
    tags = sagemaker.list_tags(ResourceArn=endpoint["EndpointArn"]).get("Tags", [])
    return {t["Key"]: t["Value"] for t in tags}


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else str(value or "")[:19]


def status_lines(target: Target, limit: int = 10) -> list[str]:
    """Executions of the stack's state machine, its endpoint, and the latest training jobs."""
    lines = [
        f"target: {target.name}, stack {target.stack_name}" + (f" ({target.endpoint_url})" if target.is_local else "")
    ]
    sfn = target.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=target.output("StateMachineArn"), maxResults=limit)["executions"]
    lines.append(f"\nexecutions (latest {len(executions)}):")
    for item in executions:
        line = f"  {item['name']}  {item['status']}  started {_when(item.get('startDate'))}"
        if item["status"] not in ("RUNNING", "SUCCEEDED"):
            detail = sfn.describe_execution(executionArn=item["executionArn"])
            line += f"  {detail.get('error', '')}: {str(detail.get('cause', ''))[:160]}"
        lines.append(line)
    sm = target.client("sagemaker")
    endpoint = target.output("EndpointName")
    lines.append("\nendpoint:")
    try:
        described = sm.describe_endpoint(EndpointName=endpoint)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ValidationException":
            raise
        lines.append(f"  {endpoint}  (none: no execution has deployed it yet)")
    else:
        variants = ", ".join(
            f"{v['VariantName']} x{v.get('CurrentInstanceCount', '?')}" for v in described.get("ProductionVariants", [])
        )
        reason = f"  reason: {described['FailureReason']}" if described.get("FailureReason") else ""
        lines.append(
            f"  {endpoint}  {described['EndpointStatus']}  config {described.get('EndpointConfigName')}  "
            f"{variants}{reason}"
        )
        tags = endpoint_tags(sm, described)
        if tags.get(TRAINING_JOB_TAG):
            lines.append(f"    serving {tags[TRAINING_JOB_TAG]} (test top-1 {tags.get(TEST_TOP1_TAG, '?')})")
    prefix = target.output("ResourcePrefix")
    jobs = sm.list_training_jobs(NameContains=prefix, MaxResults=limit, SortBy="CreationTime")["TrainingJobSummaries"]
    lines.append(f"\ntraining jobs (latest {len(jobs)}):")
    for job in jobs:
        detail = sm.describe_training_job(TrainingJobName=job["TrainingJobName"])
        metrics = {m["MetricName"]: m["Value"] for m in detail.get("FinalMetricDataList", [])}
        extra = f"  test:top1={metrics['test:top1']:.3f}" if "test:top1" in metrics else ""
        reason = f"  reason: {detail['FailureReason'][:160]}" if detail.get("FailureReason") else ""
        count = detail.get("ResourceConfig", {}).get("InstanceCount", 1)
        lines.append(f"  {job['TrainingJobName']}  {job['TrainingJobStatus']}  x{count}{extra}{reason}")
    lines.extend(notification_lines(target))
    return lines


def notification_lines(target: Target, last: int = 5) -> list[str]:
    """The notification topic and, locally, the last messages published to it (the local stand-in for a mailbox)."""
    topic = target.outputs().get("NotificationTopicArn")
    if topic is None:  # a stack deployed before the topic existed
        return []
    if not target.is_local or target.home is None:
        return [f"\nnotifications: {topic} (subscribe: aws sns subscribe --topic-arn {topic} --protocol email ...)"]
    records = read_inbox(StateLayout(target.home).notifications, topic.rsplit(":", 1)[-1], last)
    lines = [f"\nnotifications (latest {len(records)} published to {topic.rsplit(':', 1)[-1]}):"]
    for record in records:
        lines.append(
            f"  {str(record.get('Timestamp', ''))[:19]}  {notification_summary(str(record.get('Message', '')))}"
        )
    return lines


def notification_summary(message: str) -> str:
    """One line for a message: an execution's status, name and error or deployed version; else the text, cut."""
    try:
        doc = json.loads(message)
        detail = doc["detail"]
        if doc.get("detail-type") != EXECUTION_STATUS_CHANGE:
            raise KeyError("detail-type")
    except (ValueError, KeyError, TypeError):
        return message[:160]
    if detail.get("status") == "SUCCEEDED":
        try:
            version = json.loads(detail.get("output") or "{}").get("TrainingJobName", "?")
        except ValueError:
            version = "?"
        return f"execution {detail.get('name')} SUCCEEDED: serving {version}"
    cause = str(detail.get("cause"))[:120]
    return f"execution {detail.get('name')} {detail.get('status')}: {detail.get('error')}: {cause}"


def latest_job(target: Target) -> str:
    prefix = target.output("ResourcePrefix")
    jobs = target.client("sagemaker").list_training_jobs(NameContains=prefix, MaxResults=1, SortBy="CreationTime")
    if not jobs["TrainingJobSummaries"]:
        raise OpsError(f"no training jobs named {prefix}-* yet; run an execution first")
    return str(jobs["TrainingJobSummaries"][0]["TrainingJobName"])


def print_logs(
    target: Target, *, job: str | None, function: bool, tail: int | None, echo: Callable[[str], None] = print
) -> int:
    """Print a training job's log streams (one block per host), or the inference function's log."""
    logs = target.client("logs")
    if function:
        group, prefix = f"/aws/lambda/{target.output('InferenceFunctionName')}", ""
    else:
        group, prefix = TRAINING_LOG_GROUP, f"{job or latest_job(target)}/"
    streams: dict[str, list[str]] = {}
    try:
        query = {"logGroupName": group, **({"logStreamNamePrefix": prefix} if prefix else {})}
        for page in logs.get_paginator("filter_log_events").paginate(**query):
            for event in page["events"]:
                streams.setdefault(event["logStreamName"], []).append(event["message"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            raise OpsError(f"no log group {group} yet") from None
        raise
    if not streams:
        raise OpsError(f"no log events in {group} for {prefix or 'the function'}")
    for stream, messages in sorted(streams.items()):
        echo(f"==> {group} {stream} <==")
        for message in messages[-tail:] if tail else messages:
            echo(message)
    return 0
