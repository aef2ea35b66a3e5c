"""ops.progress: what ``start --watch`` and ``up`` print while an execution runs (states once, job and endpoint
status changes once, epoch metrics of one host), read from stubbed Step Functions, SageMaker and Logs answers."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

from botocore.stub import Stubber

from ops.progress import TRAINING_LOG_GROUP, Progress, format_metric_line
from tests.unit.ops.ops_fakes import client, stubbed_target

AT = dt.datetime(2025, 4, 9, tzinfo=dt.UTC)
LINE = "METRIC split=train epoch=2 loss=0.523100 top1=0.812500 top5=0.990000 samples=1200 seconds=3.2"


def _scheduled(action: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": 5,
        "type": "TaskScheduled",
        "taskScheduledEventDetails": {
            "resource": f"arn:aws:states:::aws-sdk:sagemaker:{action}",
            "parameters": json.dumps(parameters),
        },
    }


def _progress(clients: dict[str, Any] | None = None) -> tuple[Progress, io.StringIO]:
    out = io.StringIO()
    return Progress(stubbed_target(clients), out=out), out


def test_metric_lines_are_printed_compactly() -> None:
    """``key=value`` fields: split and epoch first, loss/top1/top5 to 4 decimals, the rest as they are."""
    assert format_metric_line("job", LINE) == (
        "  job  train  epoch  2  loss 0.5231  top1 0.8125  top5 0.9900  samples 1200  seconds 3.2"
    )
    assert format_metric_line("job", "METRIC split=valid epoch=1 note=warm") == "  job  valid  epoch  1  note warm"


def test_states_are_shown_once_and_failures_are_explained() -> None:
    """Each state once (polling loops re-enter them); a handled task failure and an execution failure differ."""
    progress, out = _progress()
    progress.on_events(
        [
            {"id": 2, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Train Model"}},
            {"id": 3, "type": "TaskFailed", "taskFailedEventDetails": {"error": "SageMaker.ResourceNotFoundException"}},
            {"id": 4, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Train Model"}},
            {
                "id": 5,
                "type": "ExecutionFailed",
                "executionFailedEventDetails": {"error": "States.TaskFailed", "cause": "x" * 400},
            },
        ]
    )
    lines = out.getvalue().splitlines()
    assert lines[0] == "→ Train Model"
    assert lines[1] == "  TaskFailed (handled by the state machine): SageMaker.ResourceNotFoundException"
    assert lines[2] == "✗ ExecutionFailed: States.TaskFailed " + "x" * 300  # the cause is cut to 300 characters
    assert len(lines) == 3


def test_scheduled_tasks_register_jobs_tuning_jobs_and_endpoints() -> None:
    """createTrainingJob / createHyperParameterTuningJob / createEndpoint events name what to poll."""
    progress, _ = _progress()
    progress.on_events(
        [
            _scheduled("createTrainingJob", {"TrainingJobName": "job-1"}),
            _scheduled("createHyperParameterTuningJob", {"HyperParameterTuningJobName": "hpo-1"}),
            _scheduled("updateEndpoint", {"EndpointName": "dogbreed-dev"}),
        ]
    )
    assert progress.jobs == {"job-1": ""}
    assert progress.tuning_jobs == {"hpo-1"}
    assert progress.endpoints == {"dogbreed-dev": ""}


def _job(status: str, secondary: str) -> dict[str, Any]:
    return {
        "TrainingJobName": "job-1",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/job-1",
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/m"},
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "StoppingCondition": {},
        "CreationTime": AT,
    }


def _log_page(stub: Stubber, events: list[tuple[str, int, str]], start: int | None) -> None:
    params: dict[str, Any] = {"logGroupName": TRAINING_LOG_GROUP, "logStreamNamePrefix": "job-1/"}
    if start is not None:
        params["startTime"] = start
    stub.add_response(
        "filter_log_events",
        {"events": [{"logStreamName": s, "timestamp": t, "message": m, "eventId": f"{s}-{t}"} for s, t, m in events]},
        params,
    )


def test_polls_print_status_changes_once_and_metrics_of_algo_1_once() -> None:
    """Job status is printed when it changes; metric lines of algo-1 only, each once across polls."""
    sm, logs = client("sagemaker"), client("logs")
    progress, out = _progress({"sagemaker": sm, "logs": logs})
    progress.jobs["job-1"] = ""
    with Stubber(sm) as sm_stub, Stubber(logs) as logs_stub:
        sm_stub.add_response("describe_training_job", _job("InProgress", "Training"), {"TrainingJobName": "job-1"})
        _log_page(
            logs_stub,
            [
                ("job-1/algo-1-1700000000", 10, LINE),
                ("job-1/algo-2-1700000000", 11, LINE),
                ("job-1/algo-1-1700000000", 12, "loading data"),
            ],
            None,
        )
        sm_stub.add_response("describe_training_job", _job("InProgress", "Training"), {"TrainingJobName": "job-1"})
        # the next poll reads from the last timestamp on, so it sees the boundary event again
        _log_page(
            logs_stub,
            [
                ("job-1/algo-1-1700000000", 12, "loading data"),
                ("job-1/algo-1-1700000000", 20, LINE.replace("epoch=2", "epoch=3")),
            ],
            12,
        )
        sm_stub.add_response("describe_training_job", _job("Completed", "Completed"), {"TrainingJobName": "job-1"})
        _log_page(logs_stub, [], 20)
        for _ in range(3):
            progress.on_poll()
        # Completed and its logs read: later polls ask nothing more about the job
        progress.on_poll()
        sm_stub.assert_no_pending_responses()
        logs_stub.assert_no_pending_responses()
    assert out.getvalue().splitlines() == [
        format_metric_line("job-1", LINE),
        "  training job job-1: InProgress / Training",
        format_metric_line("job-1", LINE.replace("epoch=2", "epoch=3")),
        "  training job job-1: Completed / Completed",
    ]


def test_endpoint_status_changes_are_printed_with_the_failure_reason() -> None:
    """An endpoint's status is printed when it changes, with FailureReason when there is one."""
    sm = client("sagemaker")
    progress, out = _progress({"sagemaker": sm})
    progress.endpoints["dogbreed-dev"] = ""
    endpoint = {
        "EndpointName": "dogbreed-dev",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/d",
        "CreationTime": AT,
        "LastModifiedTime": AT,
    }
    with Stubber(sm) as stub:
        stub.add_response(
            "describe_endpoint", {**endpoint, "EndpointStatus": "Creating"}, {"EndpointName": "dogbreed-dev"}
        )
        stub.add_response(
            "describe_endpoint", {**endpoint, "EndpointStatus": "Creating"}, {"EndpointName": "dogbreed-dev"}
        )
        stub.add_response(
            "describe_endpoint",
            {**endpoint, "EndpointStatus": "Failed", "FailureReason": "no model"},
            {"EndpointName": "dogbreed-dev"},
        )
        for _ in range(3):
            progress.on_poll()
    assert out.getvalue().splitlines() == [
        "  endpoint dogbreed-dev: Creating",
        "  endpoint dogbreed-dev: Failed (no model)",
    ]


def test_tuning_jobs_bring_their_training_jobs_and_poll_errors_are_ignored() -> None:
    """A tuning job's trials become polled jobs; an API error during a poll is best effort, never fatal."""
    sm = client("sagemaker")
    progress, out = _progress({"sagemaker": sm})
    progress.tuning_jobs.add("hpo-1")
    with Stubber(sm) as stub:
        stub.add_response(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            {
                "TrainingJobSummaries": [
                    {
                        "TrainingJobName": "hpo-1-001-abc",
                        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/hpo-1-001-abc",
                        "CreationTime": AT,
                        "TrainingJobStatus": "InProgress",
                        "TunedHyperParameters": {},
                    }
                ]
            },
            {"HyperParameterTuningJobName": "hpo-1", "MaxResults": 100},
        )
        stub.add_client_error("describe_training_job", "ThrottlingException", "Rate exceeded")
        progress.on_poll()
        stub.add_client_error("list_training_jobs_for_hyper_parameter_tuning_job", "ThrottlingException", "slow down")
        progress.on_poll()
    assert progress.jobs == {"hpo-1-001-abc": ""}
    assert out.getvalue() == ""


def test_emit_replaces_printing() -> None:
    """With ``emit`` (``up`` uses its own say()), lines go there instead of ``out``."""
    lines: list[str] = []
    out = io.StringIO()
    progress = Progress(stubbed_target(), out=out, emit=lines.append)
    progress.on_events([{"id": 2, "type": "PassStateEntered", "stateEnteredEventDetails": {"name": "Prepare"}}])
    assert lines == ["→ Prepare"] and out.getvalue() == ""
