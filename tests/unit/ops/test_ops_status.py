"""ops.status: ``status`` (executions, endpoint, training jobs) and ``logs`` (CloudWatch Logs), read through the
same APIs on both targets; here every API answer comes from botocore's Stubber."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.stub import Stubber

from ops.status import TRAINING_LOG_GROUP, latest_job, print_logs, status_lines
from ops.target import OpsError
from tests.unit.ops.ops_fakes import OUTPUTS, client, stubbed_target

AT = dt.datetime(2025, 4, 9, 12, 30, 0, tzinfo=dt.UTC)
SM_ARN = OUTPUTS["StateMachineArn"]
EXEC_PREFIX = SM_ARN.replace(":stateMachine:", ":execution:")
JOB_ARN = "arn:aws:sagemaker:us-east-1:123456789012:training-job/"
ENDPOINT_ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogbreed-dev"


def _job(name: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": JOB_ARN + name,
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/m"},
        "TrainingJobStatus": status,
        "SecondaryStatus": "Completed",
        "StoppingCondition": {},
        "CreationTime": AT,
        **extra,
    }


def _summary(name: str, status: str) -> dict[str, Any]:
    return {"TrainingJobName": name, "TrainingJobArn": JOB_ARN + name, "CreationTime": AT, "TrainingJobStatus": status}


def test_status_lists_executions_endpoint_and_jobs() -> None:
    """One block per resource: failed executions with error/cause, the endpoint and what it serves, job metrics."""
    sfn, sm = client("stepfunctions"), client("sagemaker")
    with Stubber(sfn) as sfn_stub, Stubber(sm) as sm_stub:
        sfn_stub.add_response(
            "list_executions",
            {
                "executions": [
                    {
                        "executionArn": EXEC_PREFIX + ":e2",
                        "stateMachineArn": SM_ARN,
                        "name": "e2",
                        "status": "FAILED",
                        "startDate": AT,
                    },
                    {
                        "executionArn": EXEC_PREFIX + ":e1",
                        "stateMachineArn": SM_ARN,
                        "name": "e1",
                        "status": "SUCCEEDED",
                        "startDate": AT,
                    },
                ]
            },
            {"stateMachineArn": SM_ARN, "maxResults": 10},
        )
        sfn_stub.add_response(
            "describe_execution",
            {
                "executionArn": EXEC_PREFIX + ":e2",
                "stateMachineArn": SM_ARN,
                "status": "FAILED",
                "startDate": AT,
                "error": "States.TaskFailed",
                "cause": "bad lr",
            },
            {"executionArn": EXEC_PREFIX + ":e2"},
        )
        sm_stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": "dogbreed-dev",
                "EndpointArn": ENDPOINT_ARN,
                "EndpointStatus": "InService",
                "EndpointConfigName": "dogbreed-dev-c1",
                "CreationTime": AT,
                "LastModifiedTime": AT,
                "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 1}],
            },
            {"EndpointName": "dogbreed-dev"},
        )
        sm_stub.add_response(
            "list_tags",
            {
                "Tags": [
                    {"Key": "dogbreed:training-job", "Value": "dogbreed-dev-1"},
                    {"Key": "dogbreed:test-top1", "Value": "0.91"},
                ]
            },
            {"ResourceArn": ENDPOINT_ARN},
        )
        sm_stub.add_response(
            "list_training_jobs",
            {"TrainingJobSummaries": [_summary("dogbreed-dev-2", "Failed"), _summary("dogbreed-dev-1", "Completed")]},
            {"NameContains": "dogbreed-dev", "MaxResults": 10, "SortBy": "CreationTime"},
        )
        sm_stub.add_response(
            "describe_training_job",
            _job("dogbreed-dev-2", "Failed", FailureReason="AlgorithmError: ValueError: bad lr"),
            {"TrainingJobName": "dogbreed-dev-2"},
        )
        sm_stub.add_response(
            "describe_training_job",
            _job(
                "dogbreed-dev-1",
                "Completed",
                ResourceConfig={"InstanceCount": 2, "VolumeSizeInGB": 5},
                FinalMetricDataList=[{"MetricName": "test:top1", "Value": 0.91, "Timestamp": AT}],
            ),
            {"TrainingJobName": "dogbreed-dev-1"},
        )
        lines = status_lines(stubbed_target({"stepfunctions": sfn, "sagemaker": sm}))
        sfn_stub.assert_no_pending_responses()
        sm_stub.assert_no_pending_responses()
    assert lines[0] == "target: aws, stack dogbreed-dev"
    text = "\n".join(lines)
    assert "  e2  FAILED  started 2025-04-09 12:30:00  States.TaskFailed: bad lr" in text
    assert "  e1  SUCCEEDED  started 2025-04-09 12:30:00" in text
    assert "  dogbreed-dev  InService  config dogbreed-dev-c1  AllTraffic x1" in text
    assert "    serving dogbreed-dev-1 (test top-1 0.91)" in text
    assert "  dogbreed-dev-2  Failed  x1  reason: AlgorithmError: ValueError: bad lr" in text
    assert "  dogbreed-dev-1  Completed  x2  test:top1=0.910" in text


def test_status_without_an_endpoint_says_none_deployed_yet() -> None:
    """DescribeEndpoint's "Could not find endpoint" is shown as "none yet", not an error."""
    sfn, sm = client("stepfunctions"), client("sagemaker")
    with Stubber(sfn) as sfn_stub, Stubber(sm) as sm_stub:
        sfn_stub.add_response("list_executions", {"executions": []}, {"stateMachineArn": SM_ARN, "maxResults": 10})
        sm_stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint")
        sm_stub.add_response(
            "list_training_jobs",
            {"TrainingJobSummaries": []},
            {"NameContains": "dogbreed-dev", "MaxResults": 10, "SortBy": "CreationTime"},
        )
        lines = status_lines(stubbed_target({"stepfunctions": sfn, "sagemaker": sm}))
    assert "  dogbreed-dev  (none: no execution has deployed it yet)" in lines
    assert "\nexecutions (latest 0):" in lines and "\ntraining jobs (latest 0):" in lines


def _filter_page(stub: Stubber, group: str, prefix: str, events: list[tuple[str, str]]) -> None:
    stub.add_response(
        "filter_log_events",
        {
            "events": [
                {"logStreamName": s, "timestamp": 1, "message": m, "eventId": f"{s}-{i}"}
                for i, (s, m) in enumerate(events)
            ]
        },
        {"logGroupName": group, "logStreamNamePrefix": prefix},
    )


def test_logs_prints_the_latest_jobs_streams_with_tail() -> None:
    """Without --job: the newest job; each host's stream under a header; --tail keeps the last N lines."""
    sm, logs = client("sagemaker"), client("logs")
    out: list[str] = []
    with Stubber(sm) as sm_stub, Stubber(logs) as logs_stub:
        sm_stub.add_response(
            "list_training_jobs",
            {"TrainingJobSummaries": [_summary("job-a", "Completed")]},
            {"NameContains": "dogbreed-dev", "MaxResults": 1, "SortBy": "CreationTime"},
        )
        _filter_page(
            logs_stub,
            TRAINING_LOG_GROUP,
            "job-a/",
            [
                ("job-a/algo-1-1", "line one"),
                ("job-a/algo-2-1", "other host"),
                ("job-a/algo-1-1", "METRIC split=train epoch=1 loss=1.0 top1=0.5"),
            ],
        )
        assert (
            print_logs(
                stubbed_target({"sagemaker": sm, "logs": logs}), job=None, function=False, tail=1, echo=out.append
            )
            == 0
        )
    assert out == [
        f"==> {TRAINING_LOG_GROUP} job-a/algo-1-1 <==",
        "METRIC split=train epoch=1 loss=1.0 top1=0.5",
        f"==> {TRAINING_LOG_GROUP} job-a/algo-2-1 <==",
        "other host",
    ]


def test_logs_of_the_function_read_its_log_group() -> None:
    """--function reads every stream of /aws/lambda/<InferenceFunctionName> (no stream prefix is sent)."""
    logs = client("logs")
    out: list[str] = []
    with Stubber(logs) as stub:
        stub.add_response(
            "filter_log_events",
            {"events": [{"logStreamName": "2025/04/09/[$LATEST]abc", "timestamp": 1, "message": "START RequestId"}]},
            {"logGroupName": "/aws/lambda/dogbreed-dev-inference"},
        )
        print_logs(stubbed_target({"logs": logs}), job=None, function=True, tail=None, echo=out.append)
    assert out == ["==> /aws/lambda/dogbreed-dev-inference 2025/04/09/[$LATEST]abc <==", "START RequestId"]


def test_logs_errors_are_ops_errors() -> None:
    """No log group, no events for the job, no jobs at all: each is one OpsError saying what is missing."""
    logs, sm = client("logs"), client("sagemaker")
    with Stubber(logs) as stub:
        stub.add_client_error(
            "filter_log_events", "ResourceNotFoundException", "The specified log group does not exist."
        )
        with pytest.raises(OpsError, match=f"no log group {TRAINING_LOG_GROUP} yet"):
            print_logs(stubbed_target({"logs": logs}), job="nope", function=False, tail=None)
        _filter_page(stub, TRAINING_LOG_GROUP, "nope/", [])
        with pytest.raises(OpsError, match=f"no log events in {TRAINING_LOG_GROUP} for nope/"):
            print_logs(stubbed_target({"logs": logs}), job="nope", function=False, tail=None)
    with Stubber(sm) as stub:
        stub.add_response(
            "list_training_jobs",
            {"TrainingJobSummaries": []},
            {"NameContains": "dogbreed-dev", "MaxResults": 1, "SortBy": "CreationTime"},
        )
        with pytest.raises(OpsError, match="no training jobs named dogbreed-dev-\\* yet"):
            latest_job(stubbed_target({"sagemaker": sm}))
