"""What ``start --watch`` and ``up`` print while an execution runs, in the pipeline's phases (ops/phases.py).

One header per phase (``[3/7] train``), then what matters in it: the training job's status and one line per epoch
with the train and valid metrics (on a terminal, a progress bar with the latest metrics instead), the gate's
numbers, the endpoint's status, the autoscaling bounds. Internal Pass/Choice/Wait states and task errors the ASL
handles itself show only with ``verbose``. Everything is read through the same APIs on both targets (Step Functions
history, DescribeTrainingJob, CloudWatch Logs of ``/aws/sagemaker/TrainingJobs``, DescribeEndpoint).

Metric lines are recognised with the training code's own SageMaker MetricDefinitions (``training/
metric_definitions.json``). Output goes through rich (a maintained terminal library: live progress bars that
coexist with printed lines, and plain text when the output is not a terminal, as in CI logs and tests).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn
from rich.progress import Progress as Bars

from local_aws.constants import ASL_PATH, TRAINING_LOG_GROUP, TRAINING_TERMINAL, metric_definitions
from ops.executions import event_details, scheduled_resources
from ops.phases import PhaseMap, PhaseTracker, phase_label
from ops.target import Target

_FIELD = re.compile(r"(\w+)=(\S+)")
_SHOWN_METRICS = ("loss", "top1")


def _metric_patterns() -> list[re.Pattern[str]]:
    return [re.compile(d["Regex"]) for d in metric_definitions()]


def metric_fields(line: str) -> dict[str, str]:
    """The ``key=value`` fields of a ``METRIC ...`` line."""
    return dict(_FIELD.findall(line))


def _numbers(fields: dict[str, str]) -> str:
    parts = []
    for key in _SHOWN_METRICS:
        if key in fields:
            try:
                parts.append(f"{key} {float(fields[key]):.4f}")
            except ValueError:
                parts.append(f"{key} {fields[key]}")
    return " ".join(parts)


def epoch_line(epoch: str, total: str | None, train: dict[str, str], valid: dict[str, str]) -> str:
    """``epoch 3/6  train loss 0.3441 top1 0.8920 | valid loss 0.2037 top1 0.9294  (304 img/s)``."""
    text = f"epoch {epoch}/{total}" if total else f"epoch {epoch}"
    if train:
        text += f"  train {_numbers(train)}"
    if valid:
        text += f" | valid {_numbers(valid)}"
    if "throughput" in train:
        text += f"  ({float(train['throughput']):.0f} img/s)"
    return text


def gate_line(state_input: dict[str, Any]) -> str | None:
    """The numbers the Gate state compares, from its input (``$.Metrics``, ``$.Serving.Record``)."""
    metrics = state_input.get("Metrics") or {}
    if "TestTop1" not in metrics:
        return None
    record = (state_input.get("Serving") or {}).get("Record") or {}
    serving = f"serving model {_num(record['TestTop1'])}" if record.get("HasRecord") else "no serving model to beat"
    return f"test top1 {_num(metrics['TestTop1'])} vs threshold {_num(metrics.get('Threshold'))}; {serving}"


def _num(value: Any) -> str:
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)


@dataclass
class _Job:
    status: str = ""
    epochs: str | None = None
    train: dict[str, dict[str, str]] = field(default_factory=dict)
    bar: TaskID | None = None


@dataclass
class Progress:
    """Prints what changed since the last poll."""

    target: Target
    out: TextIO = sys.stdout
    emit: Callable[[str], None] | None = None
    verbose: bool = False
    phases: PhaseMap | None = None
    entered: set[str] = field(default_factory=set)
    jobs: dict[str, _Job] = field(default_factory=dict)
    tuning_jobs: set[str] = field(default_factory=set)
    endpoints: dict[str, str] = field(default_factory=dict)
    log_since: dict[str, int] = field(default_factory=dict)
    seen_log_events: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.tracker = PhaseTracker(self.phases or PhaseMap.from_file(ASL_PATH))
        self.console = Console(file=self.out, highlight=False, soft_wrap=True)
        # Bars only where they can redraw in place; a log file or a test gets the same facts as plain lines.
        self.bars: Bars | None = None
        if self.console.is_terminal and self.emit is None:
            self.bars = Bars(
                TextColumn("  {task.fields[job]}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                console=self.console, transient=True,
            )  # fmt: skip

    def say(self, text: str) -> None:
        if self.emit is not None:
            self.emit(text)
        else:
            self.console.print(text, markup=False)

    def close(self) -> None:
        """Stop the live bars (if any); call when the execution has ended."""
        if self.bars is not None:
            self.bars.stop()

    # ----------------------------------------------------------------------------------------------- history
    def on_events(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            details = event_details(event)
            kind = str(event["type"])
            name = details.get("name")
            if name and kind.endswith("StateEntered"):
                self._entered(str(name), details)
            elif kind in ("ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"):
                self.say(f"✗ {kind}: {details.get('error', '')} {str(details.get('cause', ''))[:300]}".rstrip())
            elif kind.endswith("Failed") and details.get("error") and self.verbose:
                # A task error is often expected (the endpoint lookup's "not found" on a first deploy); the ASL's
                # Catch/Choice decides what it means; only an execution failure is fatal.
                self.say(f"    {kind} (handled by the state machine): {details.get('error')}")
        for action, parameters in scheduled_resources(events):
            self._scheduled(action, parameters)

    def _entered(self, name: str, details: dict[str, Any]) -> None:
        phase = self.tracker.enter(name)
        if phase is not None:
            self.say(phase_label(phase))
        first = name not in self.entered
        self.entered.add(name)
        if first and self.verbose:
            self.say(f"    → {name}")
        if name == "Gate":
            try:
                line = gate_line(json.loads(details.get("input") or "{}"))
            except (ValueError, AttributeError):
                line = None
            if line:
                self.say(f"  {line}")

    def _scheduled(self, action: str, parameters: dict[str, Any]) -> None:
        if action == "createTrainingJob" and parameters.get("TrainingJobName"):
            job = str(parameters["TrainingJobName"])
            if job not in self.jobs:
                self.jobs[job] = _Job(epochs=(parameters.get("HyperParameters") or {}).get("epochs"))
                resources = parameters.get("ResourceConfig") or {}
                self.say(
                    f"  training job {job} on {resources.get('InstanceCount', '?')} × "
                    f"{resources.get('InstanceType', '?')}"
                )
        elif action == "createHyperParameterTuningJob" and parameters.get("HyperParameterTuningJobName"):
            self.tuning_jobs.add(str(parameters["HyperParameterTuningJobName"]))
            self.say(f"  tuning job {parameters['HyperParameterTuningJobName']}")
        elif action in ("createEndpoint", "updateEndpoint") and parameters.get("EndpointName"):
            self.endpoints.setdefault(str(parameters["EndpointName"]), "")
        elif action == "registerScalableTarget":
            self.say(
                f"  autoscaling {parameters.get('ResourceId', '')}: {parameters.get('MinCapacity')}.."
                f"{parameters.get('MaxCapacity')} instances"
            )
        elif action == "putScalingPolicy":
            tracking = parameters.get("TargetTrackingScalingPolicyConfiguration") or {}
            if "TargetValue" in tracking:
                self.say(f"  target {tracking['TargetValue']} invocations per instance")
        elif action == "addTags":
            tags = {str(t.get("Key")).split(":", 1)[-1]: t.get("Value") for t in parameters.get("Tags") or []}
            recorded = ", ".join(f"{k}={v}" for k, v in tags.items() if k)
            self.say(f"  recorded on the endpoint: {recorded}")

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
                self.jobs.setdefault(summary["TrainingJobName"], _Job())
        for job, state in list(self.jobs.items()):
            if state.status.startswith(tuple(TRAINING_TERMINAL)):  # its logs were read when it got there
                continue
            try:
                detail = sm.describe_training_job(TrainingJobName=job)
            except ClientError:
                continue  # not created yet
            if state.epochs is None:
                state.epochs = (detail.get("HyperParameters") or {}).get("epochs")
            self._job_logs(job, state)
            label = detail["TrainingJobStatus"] + (
                f" / {detail['SecondaryStatus']}" if detail.get("SecondaryStatus") else ""
            )
            if label != state.status:
                state.status = label
                reason = f" ({detail['FailureReason']})" if detail.get("FailureReason") else ""
                self.say(f"  {self._job_prefix(job)}job status: {label}{reason}")
                if detail["TrainingJobStatus"] in TRAINING_TERMINAL and self.bars is not None and state.bar is not None:
                    self.bars.remove_task(state.bar)
                    state.bar = None
        for endpoint, shown in list(self.endpoints.items()):
            try:
                detail = sm.describe_endpoint(EndpointName=endpoint)
            except ClientError:
                continue
            if detail["EndpointStatus"] != shown:
                self.endpoints[endpoint] = detail["EndpointStatus"]
                reason = f" ({detail['FailureReason']})" if detail.get("FailureReason") else ""
                self.say(f"  endpoint {endpoint}: {detail['EndpointStatus']}{reason}")

    def _job_prefix(self, job: str) -> str:
        # One job (the usual run): its name was printed when it was scheduled. Several (tuning): name each line.
        return f"{job}: " if len(self.jobs) > 1 else ""

    def _on_metric(self, job: str, state: _Job, message: str) -> None:
        fields = metric_fields(message)
        split, epoch = fields.get("split", "?"), fields.get("epoch", "?")
        if split == "train":
            state.train[epoch] = fields
            return
        if split == "valid":
            line = epoch_line(epoch, state.epochs, state.train.pop(epoch, {}), fields)
            if self.bars is not None and state.epochs and epoch.isdigit():
                if state.bar is None:
                    self.bars.start()
                    state.bar = self.bars.add_task(line, total=int(state.epochs), job=job[-12:])
                self.bars.update(state.bar, completed=int(epoch), description=line)
                if int(epoch) < int(state.epochs):
                    return  # the bar shows it; the last epoch is also printed, so the log keeps the result
            self.say(f"  {self._job_prefix(job)}{line}")
        elif split == "kept":
            self.say(f"  {self._job_prefix(job)}kept epoch {epoch} (lowest valid loss): valid {_numbers(fields)}")
        else:
            self.say(f"  {self._job_prefix(job)}{split} {_numbers(fields)}")

    def _job_logs(self, job: str, state: _Job) -> None:
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
                        self._on_metric(job, state, message)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        self.log_since.setdefault(job, 0)
