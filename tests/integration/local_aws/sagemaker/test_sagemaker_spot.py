"""Managed spot training through the local SageMaker: a [chaos.spot] interruption, checkpoint resume, billing, MaxWait.

The resume proof runs the real training/train.py (digits, small CNN, 16 px): the test lets the first attempt's
checkpoint reach the job's CheckpointConfig.S3Uri, then switches the interruption on, and reads the second attempt's
log to see it continue at the checkpoint's next epoch.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from chaos_helpers import ChaosFile
from sagemaker_helpers import Stack, host_log, job_request, real_training_request, wait_for, wait_job

from local_aws import chaos
from local_aws.constants import TRAINING_DIR
from ops.data import upload_data
from tests.integration.local_aws_fixtures import Aws
from tools.dataset import render_digits
from tools.source_package import package_source

pytestmark = pytest.mark.slow
DATA_PREFIX = "tests/sagemaker/spot-digits-16px/"
# Long enough that the job is still training when its first checkpoint reaches S3 (synced every 5 s:
# runner.CHECKPOINT_SYNC_S) and the test reclaims its instance; 12 epochs of 200 images sometimes ended first.
EPOCHS = 60
RESUMED = re.compile(r"resuming from checkpoint: epoch (\d+) done, continuing at epoch (\d+)")
TRAIN_EPOCH = re.compile(r"^METRIC split=train epoch=(\d+) ", re.MULTILINE)


@pytest.fixture
def chaos_file(local_aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChaosFile]:
    monkeypatch.delenv(chaos.ENV_CONFIG, raising=False)
    file = ChaosFile(local_aws.home)
    try:
        yield file
    finally:
        file.remove()


def _statuses(job: dict[str, Any]) -> list[str]:
    return [t["Status"] for t in job["SecondaryStatusTransitions"]]


def _checkpoint_epoch(s3: Any, bucket: str, key: str) -> int:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return 0
    return int(torch.load(io.BytesIO(body), map_location="cpu", weights_only=False)["epoch"])


def test_real_training_resumes_from_its_checkpoint_after_a_spot_interruption(
    sm: Any, s3: Any, logs: Any, stack: Stack, chaos_file: ChaosFile, tmp_path: Path
) -> None:
    digits = render_digits(tmp_path / "data", size=16, seed=0, per_class=20)
    upload_data(s3, digits, stack.data_bucket, DATA_PREFIX)
    package = package_source(TRAINING_DIR)
    code_key = f"tests/sagemaker/code/spot/{package.name}"
    s3.put_object(Bucket=stack.artifact_bucket, Key=code_key, Body=package.data)
    name = f"spot-resume-{int(time.time())}"
    checkpoint_prefix = f"checkpoints/{name}"
    request = real_training_request(
        stack,
        name,
        f"s3://{stack.artifact_bucket}/{code_key}",
        f"s3://{stack.data_bucket}/{DATA_PREFIX}",
        epochs=str(EPOCHS),
        patience="0",
        **{"checkpoint-dir": '"/opt/ml/checkpoints"'},
    )
    request["ResourceConfig"]["VolumeSizeInGB"] = 1
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": 900, "MaxWaitTimeInSeconds": 1800}
    sm.create_training_job(
        **request,
        CheckpointConfig={
            "S3Uri": f"s3://{stack.artifact_bucket}/{checkpoint_prefix}",
            "LocalPath": "/opt/ml/checkpoints",
        },
        EnableManagedSpotTraining=True,
    )
    # The chosen point: once the first attempt has a checkpoint of epoch >= 2 in S3, reclaim its instance now.
    wait_for(
        lambda: _checkpoint_epoch(s3, stack.artifact_bucket, f"{checkpoint_prefix}/checkpoint.pth"),
        lambda epoch: epoch >= 2,
        timeout=300,
        every=0.5,
    )
    chaos_file.write("[chaos.spot]\nafter_seconds = 0\ntimes = 1\ncapacity_wait_seconds = 3\n")
    job = wait_job(sm, name)

    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert _statuses(job) == [
        "Starting",
        "Downloading",
        "Training",
        "Interrupted",
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    log = host_log(logs, name)
    resumed = RESUMED.search(log)
    assert resumed is not None, "the second attempt did not resume from a checkpoint"
    done = int(resumed.group(1))
    assert 2 <= done < EPOCHS and int(resumed.group(2)) == done + 1
    first, second = log[: resumed.start()], log[resumed.end() :]
    first_epochs = [int(e) for e in TRAIN_EPOCH.findall(first)]
    second_epochs = [int(e) for e in TRAIN_EPOCH.findall(second)]
    assert first_epochs[:done] == list(range(1, done + 1))  # the first attempt trained at least to the checkpoint
    assert second_epochs == list(range(done + 1, EPOCHS + 1))  # the second went on from there, not from epoch 1
    # Billable time leaves the unbilled Interrupted wait (3 s) out: spot's saving shows as Billable < Training.
    assert job["BillableTimeInSeconds"] <= job["TrainingTimeInSeconds"] - 2
    assert job["BillableTimeInSeconds"] >= 1


def test_max_wait_stops_an_interrupted_job_as_max_wait_time_exceeded(
    sm: Any, s3: Any, stack: Stack, tiny_source: str, tiny_data: str, chaos_file: ChaosFile
) -> None:
    """Interrupted after 2 s of training, the job waits for capacity past its MaxWaitTimeInSeconds of 12 s."""
    chaos_file.write("[chaos.spot]\nafter_seconds = 2\ntimes = 1\ncapacity_wait_seconds = 600\n")
    name = f"spot-maxwait-{int(time.time())}"
    request = job_request(stack, name, tiny_source, tiny_data, epochs="30", sleep="1")
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": 10, "MaxWaitTimeInSeconds": 12}
    request["EnableManagedSpotTraining"] = True
    sm.create_training_job(**request)
    job = wait_job(sm, name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxWaitTimeExceeded")
    statuses = _statuses(job)
    assert statuses == ["Starting", "Downloading", "Training", "Interrupted", "Stopping", "MaxWaitTimeExceeded"]
    transitions = {t["Status"]: t for t in job["SecondaryStatusTransitions"]}
    trained = transitions["Interrupted"]["StartTime"] - transitions["Training"]["StartTime"]
    assert trained.total_seconds() >= 2  # after_seconds of training, not earlier
    waited = job["TrainingEndTime"] - job["CreationTime"]
    assert 12 <= waited.total_seconds() < 30
    assert job["BillableTimeInSeconds"] < job["TrainingTimeInSeconds"]


def test_an_on_demand_job_is_never_interrupted(
    sm: Any, stack: Stack, tiny_source: str, tiny_data: str, chaos_file: ChaosFile
) -> None:
    chaos_file.write("[chaos.spot]\nafter_seconds = 0\ntimes = 5\n")
    name = f"on-demand-{int(time.time())}"
    job = wait_job_after_create(sm, job_request(stack, name, tiny_source, tiny_data, epochs="2", sleep="0.5"))
    assert job["TrainingJobStatus"] == "Completed"
    assert "Interrupted" not in _statuses(job)
    assert job["BillableTimeInSeconds"] == job["TrainingTimeInSeconds"]


def wait_job_after_create(sm: Any, request: dict[str, Any]) -> dict[str, Any]:
    sm.create_training_job(**request)
    return wait_job(sm, request["TrainingJobName"])


def test_stop_training_job_while_interrupted_stops_it_without_a_restart(
    sm: Any, stack: Stack, tiny_source: str, tiny_data: str, chaos_file: ChaosFile
) -> None:
    chaos_file.write("[chaos.spot]\nafter_seconds = 1\ntimes = 1\ncapacity_wait_seconds = 600\n")
    name = f"spot-stop-{int(time.time())}"
    request = job_request(stack, name, tiny_source, tiny_data, epochs="30", sleep="1")
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 1200}
    request["EnableManagedSpotTraining"] = True
    sm.create_training_job(**request)
    wait_for(lambda: sm.describe_training_job(TrainingJobName=name)["SecondaryStatus"], lambda s: s == "Interrupted")
    sm.stop_training_job(TrainingJobName=name)
    job = wait_for(
        lambda: sm.describe_training_job(TrainingJobName=name),
        lambda j: j["TrainingJobStatus"] == "Stopped",
        timeout=30,
    )
    assert _statuses(job) == ["Starting", "Downloading", "Training", "Interrupted", "Stopping", "Stopped"]
