"""ops.progress: what ``start --watch`` and ``up`` print while an execution runs (states once, job and endpoint
status changes once, epoch metrics of one host), read from stubbed Step Functions, SageMaker and Logs answers."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

from botocore.stub import Stubber

from ops.progress import TRAINING_LOG_GROUP, Progress, _Job, epoch_line, gate_line, metric_fields
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


def _entered(event_id: int, name: str, kind: str = "PassStateEntered", state_input: Any = None) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if state_input is not None:
        details["input"] = json.dumps(state_input)
    return {"id": event_id, "type": kind, "stateEnteredEventDetails": details}


def test_epoch_lines_show_train_and_valid_side_by_side() -> None:
    """loss/top1 to 4 decimals, the epoch out of the total, throughput rounded; absent halves are left out."""
    train = metric_fields(LINE.replace("throughput", "x") + " throughput=304.3")
    valid = metric_fields("METRIC split=valid epoch=2 loss=0.2037 top1=0.9294 top5=1.0 samples=269")
    assert epoch_line("2", "6", train, valid) == (
        "epoch 2/6  train loss 0.5231 top1 0.8125 | valid loss 0.2037 top1 0.9294  (304 img/s)"
    )
    assert epoch_line("1", None, {}, valid) == "epoch 1 | valid loss 0.2037 top1 0.9294"


def test_phases_replace_internal_state_names_which_only_verbose_shows() -> None:
    """The real ASL's states, as an execution enters them: one header per phase, internal states hidden."""
    names = ["ValidateInput", "CheckSections", "NameResources", "CreateTrainingJob", "WaitForTraining",
             "DescribeTraining", "LookupEndpoint", "Gate", "CreateModel", "CreateEndpoint", "DescribeEndpoint",
             "RegisterScalableTarget", "PutScalingPolicy", "RecordServingMetrics", "Deployed"]  # fmt: skip
    events = [_entered(i, name) for i, name in enumerate(names, start=2)]
    quiet, out = _progress()
    quiet.on_events(events)
    assert out.getvalue().splitlines() == [
        "[1/7] validate", "[3/7] train", "[4/7] gate", "[5/7] deploy", "[6/7] scale", "[7/7] record",
    ]  # fmt: skip
    loud = Progress(stubbed_target(), out=io.StringIO(), verbose=True)
    loud.on_events(events)
    shown = loud.out.getvalue().splitlines()  # type: ignore[attr-defined]
    assert "    → CheckSections" in shown and "    → WaitForTraining" in shown
    assert shown.index("[3/7] train") < shown.index("    → CreateTrainingJob")


def test_failures_the_asl_handles_are_hidden_unless_verbose_and_execution_failures_are_not() -> None:
    """A task error the ASL's Catch handles is internal; the execution's own failure is shown, cut to 300 chars."""
    failure = [
        {"id": 3, "type": "TaskFailed", "taskFailedEventDetails": {"error": "SageMaker.ResourceNotFoundException"}},
        {"id": 5, "type": "ExecutionFailed", "executionFailedEventDetails": {"error": "States.TaskFailed",
                                                                            "cause": "x" * 400}},
    ]  # fmt: skip
    quiet, out = _progress()
    quiet.on_events(failure)
    assert out.getvalue().splitlines() == ["✗ ExecutionFailed: States.TaskFailed " + "x" * 300]
    loud = Progress(stubbed_target(), out=io.StringIO(), verbose=True)
    loud.on_events(failure)
    assert loud.out.getvalue().splitlines()[0] == (  # type: ignore[attr-defined]
        "    TaskFailed (handled by the state machine): SageMaker.ResourceNotFoundException"
    )


def test_the_gate_shows_the_numbers_it_compares() -> None:
    """From the Gate state's input: the new model's test top-1, the threshold, the serving model's record."""
    progress, out = _progress()
    progress.on_events(
        [_entered(2, "Gate", "ChoiceStateEntered", {"Metrics": {"TestTop1": 0.9888, "Threshold": 0.8},
                                                     "Serving": {"Record": {"HasRecord": True, "TestTop1": 0.97}}})]
    )  # fmt: skip
    assert out.getvalue().splitlines()[-1] == "  test top1 0.9888 vs threshold 0.8; serving model 0.97"
    assert gate_line({"Metrics": {"TestTop1": 0.5, "Threshold": 0.8}, "Serving": {"Record": {"HasRecord": False}}}) == (
        "test top1 0.5 vs threshold 0.8; no serving model to beat"
    )
    assert gate_line({"Config": {}}) is None


def test_scheduled_tasks_register_what_to_poll_and_print_the_plan() -> None:
    """createTrainingJob (hosts and epochs), tuning, endpoints, and the autoscaling bounds the ASL registers."""
    progress, out = _progress()
    progress.on_events(
        [
            _scheduled("createTrainingJob", {"TrainingJobName": "job-1", "HyperParameters": {"epochs": "6"},
                                             "ResourceConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.xlarge"}}),
            _scheduled("createHyperParameterTuningJob", {"HyperParameterTuningJobName": "hpo-1"}),
            _scheduled("updateEndpoint", {"EndpointName": "dogbreed-dev"}),
            _scheduled("registerScalableTarget", {"ResourceId": "endpoint/dogbreed-dev/variant/AllTraffic",
                                                  "MinCapacity": 1, "MaxCapacity": 2}),
        ]
    )  # fmt: skip
    assert list(progress.jobs) == ["job-1"] and progress.jobs["job-1"].epochs == "6"
    assert progress.tuning_jobs == {"hpo-1"}
    assert progress.endpoints == {"dogbreed-dev": ""}
    assert out.getvalue().splitlines() == [
        "  training job job-1 on 2 × ml.m5.xlarge",
        "  tuning job hpo-1",
        "  autoscaling endpoint/dogbreed-dev/variant/AllTraffic: 1..2 instances",
    ]


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


def test_polls_print_status_changes_once_and_one_line_per_epoch_of_algo_1() -> None:
    """Job status when it changes; train+valid of an epoch as one line, from algo-1 only, each once across polls."""
    sm, logs = client("sagemaker"), client("logs")
    progress, out = _progress({"sagemaker": sm, "logs": logs})
    progress.jobs["job-1"] = _Job(epochs="3")
    valid = "METRIC split=valid epoch=2 loss=0.2 top1=0.9 top5=1.0 samples=269"
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
                ("job-1/algo-2-1700000000", 19, valid),
                ("job-1/algo-1-1700000000", 20, valid),
                ("job-1/algo-1-1700000000", 21, "METRIC split=test epoch=3 loss=0.1 top1=0.95 top5=1.0"),
            ],
            12,
        )
        sm_stub.add_response("describe_training_job", _job("Completed", "Completed"), {"TrainingJobName": "job-1"})
        _log_page(logs_stub, [], 21)
        for _ in range(3):
            progress.on_poll()
        # Completed and its logs read: later polls ask nothing more about the job
        progress.on_poll()
        sm_stub.assert_no_pending_responses()
        logs_stub.assert_no_pending_responses()
    assert out.getvalue().splitlines() == [
        "  job status: InProgress / Training",
        "  epoch 2/3  train loss 0.5231 top1 0.8125 | valid loss 0.2000 top1 0.9000",
        "  test loss 0.1000 top1 0.9500",
        "  job status: Completed / Completed",
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
    assert list(progress.jobs) == ["hpo-1-001-abc"]
    assert out.getvalue() == ""


def test_emit_replaces_printing() -> None:
    """With ``emit`` (``up`` uses its own say()), lines go there instead of ``out``."""
    lines: list[str] = []
    out = io.StringIO()
    progress = Progress(stubbed_target(), out=out, emit=lines.append)
    progress.on_events([_entered(2, "ValidateInput", "ParallelStateEntered")])
    assert lines == ["[1/7] validate"] and out.getvalue() == ""
