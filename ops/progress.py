"""What ``start --watch`` and ``up`` print while an execution runs: states entered, training jobs and their epoch
metrics, endpoints and their status. Read through the same APIs on both targets (Step Functions history,
DescribeTrainingJob, CloudWatch Logs of ``/aws/sagemaker/TrainingJobs``, DescribeEndpoint).

Metric lines are recognised with the training code's own SageMaker MetricDefinitions (``training/
metric_definitions.json``); their ``key=value`` fields are printed compactly.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from local_aws.constants import TRAINING_LOG_GROUP, TRAINING_TERMINAL, metric_definitions
from ops.executions import event_details, scheduled_resources
from ops.target import Target

_FIELD = re.compile(r"(\w+)=(\S+)")


def _metric_patterns() -> list[re.Pattern[str]]:
    return [re.compile(d["Regex"]) for d in metric_definitions()]


def format_metric_line(job: str, line: str) -> str:
    """``<job>  train  epoch 3  loss 0.5231  top1 0.812 ...`` from a ``METRIC key=value ...`` line."""
    fields = dict(_FIELD.findall(line))
    parts = [f"  {job}", f"{fields.pop('split', '?'):<5}", f"epoch {fields.pop('epoch', '?'):>2}"]
    for key, value in fields.items():
        try:
            number = float(value)
        except ValueError:
            parts.append(f"{key} {value}")
            continue
        parts.append(f"{key} {number:.4f}" if key in ("loss", "top1", "top5") else f"{key} {value}")
    return "  ".join(parts)


@dataclass
class Progress:
    """Prints what changed since the last poll."""

    target: Target
    out: TextIO = sys.stdout
    entered: set[str] = field(default_factory=set)
    jobs: dict[str, str] = field(default_factory=dict)
    tuning_jobs: set[str] = field(default_factory=set)
    endpoints: dict[str, str] = field(default_factory=dict)
    log_since: dict[str, int] = field(default_factory=dict)
    seen_log_events: set[str] = field(default_factory=set)
    emit: Callable[[str], None] | None = None

    def say(self, text: str) -> None:
        if self.emit is not None:
            self.emit(text)
        else:
            print(text, file=self.out, flush=True)

    # ----------------------------------------------------------------------------------------------- history
    def on_events(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            details = event_details(event)
            kind = str(event["type"])
            name = details.get("name")
            # Polling loops re-enter the same states every few seconds: show each state the first time only.
            if name and kind.endswith("StateEntered") and name not in self.entered:
                self.entered.add(name)
                self.say(f"→ {name}")
            elif kind == "ExecutionFailed" or kind == "ExecutionAborted" or kind == "ExecutionTimedOut":
                self.say(f"✗ {kind}: {details.get('error', '')} {str(details.get('cause', ''))[:300]}".rstrip())
            elif kind.endswith("Failed") and details.get("error"):
                # A task error is often expected (the endpoint lookup's "not found" on a first deploy); the ASL's
                # Catch/Choice decides what it means; only an execution failure is fatal.
                self.say(f"  {kind} (handled by the state machine): {details.get('error')}")
        for action, parameters in scheduled_resources(events):
            if action == "createTrainingJob" and parameters.get("TrainingJobName"):
                self.jobs.setdefault(str(parameters["TrainingJobName"]), "")
            elif action == "createHyperParameterTuningJob" and parameters.get("HyperParameterTuningJobName"):
                self.tuning_jobs.add(str(parameters["HyperParameterTuningJobName"]))
            elif action in ("createEndpoint", "updateEndpoint") and parameters.get("EndpointName"):
                self.endpoints.setdefault(str(parameters["EndpointName"]), "")

    # ----------------------------------------------------------------------------------------------- resources
    def on_poll(self) -> None:
        try:
            self._poll()
        except (BotoCoreError, ClientError):
            return  # progress is best effort; the execution's own status decides the outcome

    def _poll(self) -> None:
        sm = self.target.client("sagemaker")
        for tuning in sorted(self.tuning_jobs):
            summaries = sm.list_training_jobs_for_hyper_parameter_tuning_job(
                HyperParameterTuningJobName=tuning, MaxResults=100
            )["TrainingJobSummaries"]
            for summary in summaries:
                self.jobs.setdefault(summary["TrainingJobName"], "")
        for job, shown in list(self.jobs.items()):
            if shown.startswith(tuple(TRAINING_TERMINAL)):  # its logs were read when it got there
                continue
            try:
                detail = sm.describe_training_job(TrainingJobName=job)
            except ClientError:
                continue  # not created yet
            self._job_logs(job)
            label = detail["TrainingJobStatus"] + (
                f" / {detail['SecondaryStatus']}" if detail.get("SecondaryStatus") else ""
            )
            if label != shown:
                self.jobs[job] = label
                reason = f" ({detail['FailureReason']})" if detail.get("FailureReason") else ""
                self.say(f"  training job {job}: {label}{reason}")
        for endpoint, shown in list(self.endpoints.items()):
            try:
                detail = sm.describe_endpoint(EndpointName=endpoint)
            except ClientError:
                continue
            if detail["EndpointStatus"] != shown:
                self.endpoints[endpoint] = detail["EndpointStatus"]
                reason = f" ({detail['FailureReason']})" if detail.get("FailureReason") else ""
                self.say(f"  endpoint {endpoint}: {detail['EndpointStatus']}{reason}")

    def _job_logs(self, job: str) -> None:
        logs = self.target.client("logs")
        kwargs: dict[str, Any] = {"logGroupName": TRAINING_LOG_GROUP, "logStreamNamePrefix": f"{job}/"}
        if job in self.log_since:
            kwargs["startTime"] = self.log_since[job]
        patterns = _metric_patterns()
        try:
            pages = logs.get_paginator("filter_log_events").paginate(**kwargs)
            for page in pages:
                for event in page["events"]:
                    key = event.get("eventId") or f"{event['logStreamName']}:{event['timestamp']}:{event['message']}"
                    if key in self.seen_log_events:
                        continue
                    self.seen_log_events.add(key)
                    self.log_since[job] = max(self.log_since.get(job, 0), int(event["timestamp"]))
                    message = event["message"]
                    host = event["logStreamName"].split("/", 1)[-1].rsplit("-", 1)[0]
                    # Every host prints the same all-reduced metrics; one host's copy is enough.
                    if host == "algo-1" and any(p.search(message) for p in patterns):
                        self.say(format_metric_line(job, message))
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        self.log_since.setdefault(job, 0)
