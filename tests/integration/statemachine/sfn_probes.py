"""Probes for the branch tests: waiting on a job or an execution, reading what it scheduled, resources made by hand.

Shared by test_execution_branches.py and test_execution_refusals.py; every call goes to the local AWS over HTTP.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.integration.local_aws_fixtures import untrained_artifact
from tests.integration.statemachine.sfn_helpers import Stack, history, sfn_event, states
from tools.source_package import package_source

NO_TEST_METRIC_SCRIPT = """\
import os, pathlib
print("METRIC split=train epoch=1 loss=0.75 top1=0.25", flush=True)
pathlib.Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text("no test split was evaluated")
"""
# Polling that the jobs below outlive: the first check reads InProgress, and that one poll was the whole budget.
TIGHT_POLLING = {"IntervalSeconds": 1, "MaxAttempts": 1}


def entered(stack: Stack, arn: str) -> list[str]:
    return states(history(stack.sfn, arn))


def until(probe: Any, timeout: float = 120.0, every: float = 0.2) -> Any:
    """Call ``probe`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, f"{probe} still false after {timeout:g} s"
        time.sleep(every)
    return value


def scheduled_parameters(stack: Stack, arn: str, resource: str) -> dict[str, Any] | None:
    """The parameters of the first ``aws-sdk`` task ``resource`` the execution scheduled, once it has."""
    for event in history(stack.sfn, arn):
        details = event.get("taskScheduledEventDetails")
        if details and details["resource"] == resource:
            parameters: dict[str, Any] = json.loads(details["parameters"])
            return parameters
    return None


def tuning_job_of(stack: Stack, arn: str) -> str:
    """The tuning job an execution created (its name is random: read it from the CreateTuningJob task)."""
    parameters = until(lambda: scheduled_parameters(stack, arn, "createHyperParameterTuningJob"))
    return str(parameters["HyperParameterTuningJobName"])


def settled_training(stack: Stack, name: str) -> dict[str, Any]:
    """DescribeTrainingJob once the job has ended (Stopping ends in Stopped)."""
    return dict(
        until(lambda: (job := stack.sm.describe_training_job(TrainingJobName=name))["TrainingJobStatus"]
              not in ("InProgress", "Stopping") and job)
    )  # fmt: skip


def settled_tuning(stack: Stack, name: str) -> dict[str, Any]:
    """DescribeHyperParameterTuningJob once the tuning job has ended."""
    describe = stack.sm.describe_hyper_parameter_tuning_job
    return dict(
        until(lambda: (job := describe(HyperParameterTuningJobName=name))["HyperParameterTuningJobStatus"]
              not in ("InProgress", "Stopping") and job)
    )  # fmt: skip


def small_tuning(stack: Stack, **tuning: Any) -> dict[str, Any]:
    """The tuning event (a 2-point grid over learning-rate), with ``tuning`` over its Tuning section."""
    payload = sfn_event("tuning", stack)
    payload["Tuning"] = {**payload["Tuning"], **tuning}
    return payload


def by_hand_model(stack: Stack, name: str) -> None:
    """A model called ``name`` created outside the pipeline (the untrained artifact, real serving code)."""
    bucket = stack.outputs["ArtifactBucketName"]
    key = f"by-hand/{name}/model.tar.gz"
    stack.s3.put_object(Bucket=bucket, Key=key, Body=untrained_artifact())
    stack.sm.create_model(
        ModelName=name,
        ExecutionRoleArn=stack.outputs["SageMakerExecutionRoleArn"],
        PrimaryContainer={"Image": "local", "ModelDataUrl": f"s3://{bucket}/{key}"},
    )


def attempts(stack: Stack, arn: str, resource: str) -> int:
    """How many times the execution scheduled the ``aws-sdk`` task ``resource`` (1 + its retries)."""
    return sum(1 for e in history(stack.sfn, arn) if e.get("taskScheduledEventDetails", {}).get("resource") == resource)


def upload_no_test_metric_source(stack: Stack, src: Path) -> str:
    """Package :data:`NO_TEST_METRIC_SCRIPT` as train.py in ``src``, upload it; its SourceDir URI."""
    (src / "train.py").write_text(NO_TEST_METRIC_SCRIPT)
    package = package_source(src)
    bucket = stack.outputs["ArtifactBucketName"]
    stack.s3.put_object(Bucket=bucket, Key=f"code/{package.name}", Body=package.data)
    return f"s3://{bucket}/code/{package.name}"
