"""The pipeline and training views' data, read through the stack's own AWS APIs with boto3, as any user's tool would.

Step Functions (DescribeStateMachine for the ASL itself, ListExecutions, DescribeExecution, GetExecutionHistory),
SageMaker (ListTrainingJobs, DescribeTrainingJob), CloudWatch Logs (the training hosts' streams) and S3 (the job's
output.tar.gz for the confusion matrix). Nothing here reaches into the local runtime's internals, so the same reader
works on AWS. The endpoints view's reads are in ``ops.console.serving``.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections import deque
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from ops.target import Target

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# CONTRACTS.md §2: train.py's one METRIC line format, ``METRIC split=<s> epoch=<n> key=value ...``.
_METRIC = re.compile(r"METRIC split=(?P<split>\w+) epoch=(?P<epoch>\d+)(?P<rest>(?: \w+=[0-9.eE+-]+)*)")
_PAIR = re.compile(r"(\w+)=([0-9.eE+-]+)")
MAX_LOG_PAGES = 50  # per stream and request: a 6-epoch demo job writes one or two pages
LOG_TAIL_LINES = 200


class NotFound(Exception):
    """The thing asked for does not exist (the console answers 404 with this message)."""


def metric_points(lines: Iterator[str]) -> dict[str, list[dict[str, float]]]:
    """``{split: [{"epoch": n, "loss": ..., "top1": ...}, ...]}`` from METRIC lines, in the order written."""
    curves: dict[str, list[dict[str, float]]] = {}
    for line in lines:
        match = _METRIC.search(line)
        if match is None:
            continue
        point: dict[str, float] = {"epoch": float(match["epoch"])}
        for key, value in _PAIR.findall(match["rest"]):
            try:
                point[key] = float(value)
            except ValueError:  # a regex-shaped but unparsable number ("1e+"): skip the value, keep the point
                continue
        curves.setdefault(match["split"], []).append(point)
    return curves


def execution_path(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The states an execution entered (in order), where it is now and, when it failed, in which state.

    The page draws the arrows from ``entered``: consecutive entered states that are nodes of one graph level.
    """
    entered: list[str] = []
    open_states: list[str] = []
    failed: str | None = None
    for event in events:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            entered.append(name)
            open_states.append(name)
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            if name in open_states:
                open_states.remove(name)
        elif kind == "ExecutionFailed" and entered:
            # A Fail state exits nothing; a failure caught nowhere leaves its state open.
            failed = open_states[-1] if open_states else entered[-1]
    return {"entered": entered, "current": open_states[-1] if open_states else None, "failed_state": failed}


class ConsoleReader:
    """Every read the console makes, on one target (``ops.target.Target``: local runtime or AWS)."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def _client(self, service: str) -> Any:
        return self.target.client(service, retries=3)

    # ---------------------------------------------------------------------------------------------- pipeline
    def pipeline(self) -> dict[str, Any]:
        """The deployed state machine's definition (the ASL as Step Functions holds it) and its latest executions."""
        sfn = self._client("stepfunctions")
        arn = self.target.output("StateMachineArn")
        machine = sfn.describe_state_machine(stateMachineArn=arn)
        executions = sfn.list_executions(stateMachineArn=arn, maxResults=25).get("executions", [])
        return {
            "stateMachineArn": arn,
            "name": machine.get("name"),
            "definition": json.loads(machine["definition"]),
            "executions": [
                {
                    "executionArn": e["executionArn"],
                    "name": e["name"],
                    "status": e["status"],
                    "startDate": epoch(e.get("startDate")),
                    "stopDate": epoch(e.get("stopDate")),
                }
                for e in executions
            ],
        }

    def execution(self, arn: str) -> dict[str, Any]:
        """One execution: status, input, output or failure, and its path through the graph."""
        sfn = self._client("stepfunctions")
        try:
            described = sfn.describe_execution(executionArn=arn)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("ExecutionDoesNotExist", "InvalidArn"):
                raise NotFound(exc.response["Error"].get("Message") or f"no execution {arn}") from None
            raise
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        return {
            "executionArn": arn,
            "name": described["name"],
            "status": described["status"],
            "startDate": epoch(described.get("startDate")),
            "stopDate": epoch(described.get("stopDate")),
            "input": _json_or_text(described.get("input")),
            "output": _json_or_text(described.get("output")),
            "error": described.get("error"),
            "cause": described.get("cause"),
            **execution_path(events),
        }

    # ---------------------------------------------------------------------------------------------- training
    def training_jobs(self) -> list[dict[str, Any]]:
        sm = self._client("sagemaker")
        jobs = sm.list_training_jobs(SortBy="CreationTime", SortOrder="Descending", MaxResults=20)
        return [
            {
                "name": j["TrainingJobName"],
                "status": j["TrainingJobStatus"],
                "secondaryStatus": j.get("SecondaryStatus"),
                "created": epoch(j.get("CreationTime")),
            }
            for j in jobs.get("TrainingJobSummaries", [])
        ]

    def training_job(self, name: str) -> dict[str, Any]:
        """Status, final metrics, per-host curves from the METRIC lines of each host's log stream, and a log tail."""
        job = self._describe_job(name)
        hosts: dict[str, dict[str, list[dict[str, float]]]] = {}
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        for stream, lines in self._host_logs(name):
            host = stream.split("/", 1)[-1]
            hosts[host] = metric_points(iter(lines))
            tail.extend(f"[{host}] {line}" for line in lines)
        return {
            "name": name,
            "status": job["TrainingJobStatus"],
            "secondaryStatus": job.get("SecondaryStatus"),
            "failureReason": job.get("FailureReason"),
            "instanceCount": job.get("ResourceConfig", {}).get("InstanceCount"),
            "instanceType": job.get("ResourceConfig", {}).get("InstanceType"),
            "hyperParameters": job.get("HyperParameters", {}),
            "finalMetrics": {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])},
            "transitions": [
                {"status": t["Status"], "start": epoch(t.get("StartTime")), "message": t.get("StatusMessage")}
                for t in job.get("SecondaryStatusTransitions", [])
            ],
            "hosts": hosts,
            "logTail": list(tail),
            "hasOutput": job["TrainingJobStatus"] == "Completed",
        }

    def _describe_job(self, name: str) -> dict[str, Any]:
        try:
            job: dict[str, Any] = self._client("sagemaker").describe_training_job(TrainingJobName=name)
        except ClientError as exc:
            # SageMaker answers an unknown job with ValidationException "Requested resource not found."
            if exc.response["Error"]["Code"] == "ValidationException":
                raise NotFound(f"training job {name!r}: {exc.response['Error'].get('Message', 'not found')}") from None
            raise
        return job

    def _host_logs(self, job: str) -> Iterator[tuple[str, list[str]]]:
        logs = self._client("logs")
        try:
            streams = logs.describe_log_streams(logGroupName=TRAINING_LOG_GROUP, logStreamNamePrefix=f"{job}/")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return
            raise
        for stream in sorted(s["logStreamName"] for s in streams.get("logStreams", [])):
            lines: list[str] = []
            kwargs: dict[str, Any] = {"logGroupName": TRAINING_LOG_GROUP, "logStreamName": stream}
            kwargs["startFromHead"] = True
            for _ in range(MAX_LOG_PAGES):
                page = logs.get_log_events(**kwargs)
                lines.extend(e["message"] for e in page.get("events", []))
                token = page.get("nextForwardToken")
                # GetLogEvents: the end of the stream is reached when the same token comes back.
                if not page.get("events") or token == kwargs.get("nextToken"):
                    break
                kwargs["nextToken"] = token
            yield stream, lines

    def confusion_matrix_png(self, name: str) -> bytes:
        """``confusion_matrix.png`` from the job's ``output.tar.gz`` (train.py writes it to SM_OUTPUT_DATA_DIR)."""
        job = self._describe_job(name)
        path = job.get("OutputDataConfig", {}).get("S3OutputPath", "").rstrip("/")
        bucket, _, prefix = path.removeprefix("s3://").partition("/")
        key = f"{prefix}/{name}/output/output.tar.gz".lstrip("/")
        try:
            body = self._client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            raise NotFound(f"no output.tar.gz for {name} at s3://{bucket}/{key}: {code}") from None
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
            for member in tar.getmembers():
                if member.isfile() and member.name.rsplit("/", 1)[-1] == "confusion_matrix.png":
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        return extracted.read()
        raise NotFound(f"{name}'s output.tar.gz has no confusion_matrix.png (matplotlib missing in the job?)")


def epoch(value: Any) -> float | None:
    """A boto3 datetime as epoch seconds (what the page's charts and clocks take)."""
    return value.timestamp() if hasattr(value, "timestamp") else None


def _json_or_text(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw
