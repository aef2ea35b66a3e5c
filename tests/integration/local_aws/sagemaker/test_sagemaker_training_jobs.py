"""Training jobs on the local SageMaker through boto3 over HTTP: the status machine, errors, checkpoints, validation.

Code and data go in with the S3 API (the stack's buckets), the job runs under the stack's SageMaker role, and what a
host printed is read back from CloudWatch Logs, as on AWS.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sagemaker_helpers import (
    WAIT,
    RawResponses,
    Stack,
    assert_output_shape,
    host_log,
    job_request,
    job_streams,
    output_shape,
    put_source,
    shape_errors,
    train,
    wait_for,
)

from tests.integration.local_aws_fixtures import Aws


@pytest.fixture(scope="module")
def raw(local_aws: Aws) -> RawResponses:
    """A SageMaker client whose raw JSON answers are kept (for the output-shape checks)."""
    return RawResponses(local_aws.client("sagemaker"))


@pytest.fixture(scope="module")
def failed_jobs(sm: Any, stack: Stack, tiny_source: str, tiny_data: str) -> dict[str, dict[str, Any]]:
    """Two failed jobs: one wrote /opt/ml/output/failure and exited 3, one raised without writing it."""
    return {
        "fails": train(sm, job_request(stack, "tiny-fails", tiny_source, tiny_data, fail="bad learning rate: -1")),
        "crashes": train(sm, job_request(stack, "tiny-crashes", tiny_source, tiny_data, crash="exploded")),
    }


@pytest.fixture(scope="module")
def stopped_job(sm: Any, raw: RawResponses, stack: Stack, tiny_source: str, tiny_data: str) -> dict[str, Any]:
    """``tiny-stopped`` stopped while Training; the raw DescribeTrainingJob answers of each status along the way."""
    name = "tiny-stopped"
    sm.create_training_job(**job_request(stack, name, tiny_source, tiny_data, epochs="100", sleep="1"))
    starting = raw.call("DescribeTrainingJob", TrainingJobName=name)
    training = wait_for(
        lambda: raw.call("DescribeTrainingJob", TrainingJobName=name),
        lambda d: d["SecondaryStatus"] == "Training" or d["TrainingJobStatus"] != "InProgress",
    )
    sm.stop_training_job(TrainingJobName=name)
    stopping = raw.call("DescribeTrainingJob", TrainingJobName=name)
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name, WaiterConfig=WAIT)
    stopped = raw.call("DescribeTrainingJob", TrainingJobName=name)
    return {"starting": starting, "training": training, "stopping": stopping, "stopped": stopped}


def test_two_host_job_completes_as_one_distributed_group(
    trained: dict[str, Any], s3: Any, logs: Any, stack: Stack
) -> None:
    """Two hosts with ShardedByS3Key form one torch.distributed group; metrics, artifact and host logs are right."""
    assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")
    assert [t["Status"] for t in trained["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Uploading", "Completed",
    ]  # fmt: skip
    metrics = {m["MetricName"]: m["Value"] for m in trained["FinalMetricDataList"]}
    assert metrics == {"train:loss": pytest.approx(1.0), "valid:top1": pytest.approx(0.2)}  # the last epoch's values
    uri = trained["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == f"s3://{stack.artifact_bucket}/models/tiny-2hosts/output/model.tar.gz"
    body = s3.get_object(Bucket=stack.artifact_bucket, Key="models/tiny-2hosts/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert {"model.json", "code/inference.py"} <= set(tar.getnames())
        model = json.loads(tar.extractfile("model.json").read())  # type: ignore[union-attr]
    # ShardedByS3Key gave each host 2 of the 4 files; all_reduce over the group summed all of them.
    assert model == {"total": 12.0, "count": 4.0, "scale": 0.5}
    first, second = host_log(logs, "tiny-2hosts", "algo-1"), host_log(logs, "tiny-2hosts", "algo-2")
    assert "RANK 0 WORLD 2 FILES 2" in first
    assert "RANK 1 WORLD 2 FILES 2" in second
    assert "ARGS ['--epochs', '2', '--scale', '0.5']" in first


def test_duplicate_and_missing_training_jobs_return_the_real_errors(
    sm: Any, trained: dict[str, Any], stack: Stack, tiny_source: str, tiny_data: str
) -> None:
    """A duplicate name is ResourceInUse, a missing job ValidationException, a bad name names the member."""
    with pytest.raises(ClientError) as dup:
        sm.create_training_job(**job_request(stack, "tiny-2hosts", tiny_source, tiny_data))
    assert dup.value.response["Error"]["Code"] == "ResourceInUse"
    with pytest.raises(ClientError) as missing:
        sm.describe_training_job(TrainingJobName="no-such-job")
    assert missing.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "Requested resource not found.",
    }
    with pytest.raises(ClientError) as bad:
        sm.create_training_job(**job_request(stack, "bad-name_x", tiny_source, tiny_data))
    assert bad.value.response["Error"]["Code"] == "ValidationException"
    assert "trainingJobName" in bad.value.response["Error"]["Message"]
    names = [s["TrainingJobName"] for s in sm.list_training_jobs(NameContains="tiny-2")["TrainingJobSummaries"]]
    assert names == ["tiny-2hosts"]


def test_failure_file_becomes_failure_reason(failed_jobs: dict[str, dict[str, Any]]) -> None:
    """The failure file is the FailureReason; without one, the toolkit's ExecuteUserScriptError text is."""
    failed = failed_jobs["fails"]
    assert failed["TrainingJobStatus"] == "Failed"
    assert failed["FailureReason"] == "AlgorithmError: bad learning rate: -1"
    crashed = failed_jobs["crashes"]
    assert crashed["TrainingJobStatus"] == "Failed"
    assert crashed["FailureReason"].startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 1\n")
    assert "RuntimeError: exploded" in crashed["FailureReason"]


CHAINED_SCRIPTS = {
    # The cause is created, never raised: Python prints it without a "Traceback" header.
    "cause-never-raised": 'raise ValueError("bad shape") from KeyError("fc.bias")\n',
    # The usual form: the cause was raised and caught, so both exceptions have a traceback.
    "cause-raised": 'try:\n    {}["fc.bias"]\nexcept KeyError as exc:\n    raise ValueError("bad shape") from exc\n',
}


@pytest.mark.parametrize(
    "variant",
    [
        "cause-never-raised",
        "cause-raised",
    ],
)
def test_chained_exception_keeps_the_cause_in_failure_reason(
    sm: Any, s3: Any, stack: Stack, tiny_data: str, variant: str
) -> None:
    """A script dying of ``ValueError("bad shape") from KeyError("fc.bias")`` (no failure file) names both errors."""
    source = put_source(
        s3,
        stack.artifact_bucket,
        f"tests/sagemaker/code/chained-{variant}.tar.gz",
        {"chained.py": CHAINED_SCRIPTS[variant]},
    )
    name = f"chained-{variant}"
    failed = train(sm, job_request(stack, name, source, tiny_data, program="chained.py"))
    assert failed["TrainingJobStatus"] == "Failed"
    reason = failed["FailureReason"]
    assert reason.startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 1\n")
    assert "ValueError: bad shape" in reason
    assert "KeyError: 'fc.bias'" in reason
    assert len(reason) <= 1024


def test_stop_and_max_runtime(
    sm: Any, stopped_job: dict[str, Any], stack: Stack, tiny_source: str, tiny_data: str
) -> None:
    """StopTrainingJob walks Stopping → Stopped; MaxRuntimeInSeconds stops a job as MaxRuntimeExceeded."""
    assert stopped_job["training"]["SecondaryStatus"] == "Training"
    assert stopped_job["stopping"]["TrainingJobStatus"] in ("Stopping", "Stopped")
    stopped = stopped_job["stopped"]
    assert (stopped["TrainingJobStatus"], stopped["SecondaryStatus"]) == ("Stopped", "Stopped")

    request = job_request(stack, "tiny-timeout", tiny_source, tiny_data, epochs="100", sleep="1")
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": 2}
    sm.create_training_job(**request)
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="tiny-timeout", WaiterConfig=WAIT)
    timed_out = sm.describe_training_job(TrainingJobName="tiny-timeout")
    assert (timed_out["TrainingJobStatus"], timed_out["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")


def test_checkpoints_sync_to_s3_and_resume(
    sm: Any, s3: Any, logs: Any, stack: Stack, tiny_source: str, tiny_data: str
) -> None:
    """CheckpointConfig.LocalPath is synced to S3Uri, and a second job with the same S3Uri resumes from it."""
    checkpoint = {
        "S3Uri": f"s3://{stack.artifact_bucket}/tests/sagemaker/checkpoints/resume",
        "LocalPath": "/opt/ml/checkpoints",
    }
    first = job_request(stack, "tiny-ckpt-1", tiny_source, tiny_data, epochs="2")
    first["CheckpointConfig"] = checkpoint
    assert train(sm, first)["TrainingJobStatus"] == "Completed"
    state = s3.get_object(Bucket=stack.artifact_bucket, Key="tests/sagemaker/checkpoints/resume/state.json")
    assert json.loads(state["Body"].read()) == {"epoch": 2}
    second = job_request(stack, "tiny-ckpt-2", tiny_source, tiny_data, epochs="3")
    second["CheckpointConfig"] = checkpoint
    assert train(sm, second)["TrainingJobStatus"] == "Completed"
    log = host_log(logs, "tiny-ckpt-2")
    assert "RESUMED from epoch 2" in log and "epoch=3" in log and "epoch=1 " not in log


@pytest.mark.parametrize("form", ["file-uri", "plain-path"])
def test_local_submit_directory_is_refused_and_runs_nothing(
    sm: Any, logs: Any, stack: Stack, tiny_data: str, tmp_path: Path, form: str
) -> None:
    """``sagemaker_submit_directory`` must be s3://: a local dir fails the job at start and none of its code runs."""
    code = tmp_path / "code"
    code.mkdir()
    marker = tmp_path / "RAN"
    (code / "tiny_train.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n")
    submit = f"file://{code}" if form == "file-uri" else str(code)
    name = f"local-submit-{form}"
    failed = train(sm, job_request(stack, name, submit, tiny_data))
    assert failed["TrainingJobStatus"] == "Failed"
    assert failed["FailureReason"].startswith("ClientError: sagemaker_submit_directory")
    assert "s3://" in failed["FailureReason"]
    assert "Training" not in [t["Status"] for t in failed["SecondaryStatusTransitions"]]
    assert not marker.exists()
    assert job_streams(logs, name) == []  # no host process ever started


def _refused(sm: Any, request: dict[str, Any]) -> str:
    """Create must be refused with ValidationException and leave no job behind; returns the message."""
    with pytest.raises(ClientError) as refused:
        sm.create_training_job(**request)
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException", error
    with pytest.raises(ClientError) as missing:
        sm.describe_training_job(TrainingJobName=request["TrainingJobName"])
    assert missing.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "Requested resource not found.",
    }
    assert sm.list_training_jobs(NameContains=request["TrainingJobName"])["TrainingJobSummaries"] == []
    return str(error["Message"])


def test_instance_count_zero_and_duplicate_channels_are_refused_at_create(
    sm: Any, stack: Stack, tiny_source: str, tiny_data: str
) -> None:
    """InstanceCount 0 (without InstanceGroups) and duplicate channel names never become a job record."""
    zero = job_request(stack, "refused-zero-hosts", tiny_source, tiny_data)
    zero["ResourceConfig"]["InstanceCount"] = 0
    assert "instanceCount" in _refused(sm, zero)
    dup = job_request(stack, "refused-dup-channels", tiny_source, tiny_data)
    dup["InputDataConfig"] = dup["InputDataConfig"] * 2
    assert "Channel names must be unique" in _refused(sm, dup)


BAD_KEYS = ["/abs", "../x", "%2e%2e/x", "a/%2E%2E/x"]


@pytest.mark.parametrize("field", ["InputDataConfig", "OutputDataConfig", "CheckpointConfig"])
@pytest.mark.parametrize("bad_key", BAD_KEYS)
def test_bad_s3_uris_are_refused_at_create_naming_the_field(
    sm: Any, stack: Stack, tiny_source: str, tiny_data: str, field: str, bad_key: str
) -> None:
    """``s3://bucket//abs``, ``..`` and percent-encoded ``..`` are refused by CreateTrainingJob, naming the field."""
    uri = f"s3://{stack.data_bucket}/{bad_key}"
    request = job_request(stack, f"refused-uri-{field.lower()}-{BAD_KEYS.index(bad_key)}", tiny_source, tiny_data)
    if field == "InputDataConfig":
        request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = uri
        expected = "InputDataConfig channel 'train' S3Uri"
    elif field == "OutputDataConfig":
        request["OutputDataConfig"]["S3OutputPath"] = uri
        expected = "OutputDataConfig.S3OutputPath"
    else:
        request["CheckpointConfig"] = {"S3Uri": uri}
        expected = "CheckpointConfig.S3Uri"
    assert expected in _refused(sm, request)


def test_describe_training_job_matches_botocore_shape_in_every_status(
    raw: RawResponses,
    trained: dict[str, Any],
    failed_jobs: dict[str, dict[str, Any]],
    stopped_job: dict[str, Any],
) -> None:
    """InProgress (Starting, Training), Stopping, Stopped, Completed and Failed answers all fit botocore's output
    shape (required members, types, enums, lengths), with ModelArtifacts.S3ModelArtifacts in every one."""
    answers = {
        "InProgress/Starting": stopped_job["starting"],
        "InProgress/Training": stopped_job["training"],
        "Stopping": stopped_job["stopping"],
        "Stopped": stopped_job["stopped"],
        "Completed": raw.call("DescribeTrainingJob", TrainingJobName=trained["TrainingJobName"]),
        "Failed/failure-file": raw.call("DescribeTrainingJob", TrainingJobName="tiny-fails"),
        "Failed/crash": raw.call("DescribeTrainingJob", TrainingJobName="tiny-crashes"),
    }
    assert answers["InProgress/Starting"]["TrainingJobStatus"] == "InProgress"
    assert answers["InProgress/Training"]["TrainingJobStatus"] == "InProgress"
    assert answers["Completed"]["TrainingJobStatus"] == "Completed"
    assert answers["Failed/crash"]["TrainingJobStatus"] == "Failed"
    for label, answer in answers.items():
        assert answer["ModelArtifacts"]["S3ModelArtifacts"].endswith(
            f"/{answer['TrainingJobName']}/output/model.tar.gz"
        ), label
        assert_output_shape("DescribeTrainingJob", answer)
    assert failed_jobs["crashes"]["FailureReason"] == answers["Failed/crash"]["FailureReason"]


def test_the_shape_validator_catches_what_botocore_would_hide() -> None:
    """The validator the shape tests rely on reports missing required members, bad types, enums, lengths, extras."""
    errors = shape_errors(
        output_shape("DescribeTrainingJob"),
        {
            "TrainingJobName": "x",
            "TrainingJobStatus": "Bogus",
            "CreationTime": "2020-01-01",
            "Unmodelled": 1,
            "SecondaryStatusTransitions": [{"Status": "Training"}],
            "FailureReason": "x" * 1025,
        },
    )
    joined = "\n".join(errors)
    for expected in (
        "$.ModelArtifacts: required member missing",
        "$.TrainingJobArn: required member missing",
        "$.TrainingJobStatus: 'Bogus' is not one of",
        "$.CreationTime: expected epoch seconds",
        "$.Unmodelled: not a member",
        "$.SecondaryStatusTransitions[0].StartTime: required member missing",
        "$.FailureReason: length 1025 > max 1024",
    ):
        assert expected in joined
