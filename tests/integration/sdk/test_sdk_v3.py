"""The sagemaker SDK v3 (``.venv-sdk3``, sagemaker 3.27.x) against the local runtime, without Docker.

``ModelTrainer(...).train()`` in SageMaker-job mode (its ContainerEntrypoint + ``sm_drivers`` form) and the
``sagemaker.core.resources`` classes (``TrainingJob.get``, ``Endpoint.get`` / ``wait_for_status`` / ``invoke``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.local_aws_fixtures import Aws
from tests.integration.sdk.sdk_helpers import (
    CENTROID_METRICS,
    CENTROID_SOURCE,
    SDK3_VENV,
    TRAINING_IMAGE,
    DriverRun,
    SdkStack,
    job_log,
    last_printed,
    read_tar,
    run_driver,
    s3_bytes,
    sdk_env,
    sdk_python,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sdk3() -> Path:
    """The v3 venv's interpreter (skips the module when the venv is missing)."""
    return sdk_python(SDK3_VENV, 3)


@pytest.fixture(scope="module")
def trained_v3(sdk3: Path, sdk_stack: SdkStack, tmp_path_factory: pytest.TempPathFactory) -> DriverRun:
    """One ``ModelTrainer.train()`` of the centroid script with ``SourceCode(requirements=...)``, waited for."""
    env = sdk_env(
        sdk_stack,
        tmp_path_factory.mktemp("sdk3-home"),
        # The stack's role is least-privilege: the SDK's client-side smoke test (ec2:*, unconditional
        # cloudwatch:PutMetricData) would reject it on AWS too. docs/SAGEMAKER_SDK.md explains.
        SAGEMAKER_VALIDATE_ROLE="false",
        SDK_ROLE_ARN=sdk_stack.role,
        SDK_BUCKET=sdk_stack.artifact_bucket,
        SDK_BUCKET_PREFIX="code",  # the role reads code/* of the artifact bucket
        SDK_SOURCE_DIR=str(CENTROID_SOURCE),
        SDK_ENTRY_SCRIPT="centroid_train.py",
        SDK_REQUIREMENTS="requirements.txt",
        SDK_TRAIN_URI=sdk_stack.centroid_data,
        SDK_OUTPUT_PATH=f"s3://{sdk_stack.artifact_bucket}/training-output/sdk3",
        SDK_IMAGE=TRAINING_IMAGE,
        SDK_HYPERPARAMETERS=json.dumps({"epochs": 2, "tag": "v3 run"}),
        SDK_METRIC_DEFINITIONS=json.dumps(CENTROID_METRICS),
        SDK_BASE_JOB_NAME="sdk3-centroid",
    )
    return run_driver(sdk3, "sdk3_model_trainer.py", env)


def test_model_trainer_job_completes_with_its_artifact_and_metrics(trained_v3: DriverRun, local_aws: Aws) -> None:
    """ModelTrainer's form (ContainerEntrypoint, code + sm_drivers channels, no sagemaker_program) runs to Completed.

    The model.tar.gz in the local S3 holds what the script wrote (hyperparameters arrived as CLI args), the final
    metrics are the values the script printed last, and the job ran on the requirements layer's interpreter.
    """
    result = trained_v3.result
    assert result["TrainingJobStatus"] == "Completed"
    sm = local_aws.client("sagemaker")
    job = sm.describe_training_job(TrainingJobName=result["TrainingJobName"])
    spec = job["AlgorithmSpecification"]
    assert spec["ContainerEntrypoint"] == ["/bin/bash"]
    assert "sm_drivers/sm_train.sh" in spec["ContainerArguments"][-1]
    assert {c["ChannelName"] for c in job["InputDataConfig"]} == {"training", "code", "sm_drivers"}
    assert "sagemaker_program" not in job["HyperParameters"]
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == result["S3ModelArtifacts"]
    assert result["S3ModelArtifacts"].endswith(f"/training-output/sdk3/{result['TrainingJobName']}/output/model.tar.gz")

    files = read_tar(s3_bytes(local_aws.client("s3"), result["S3ModelArtifacts"]))
    assert set(files) >= {"model.json", "code/centroid_inference.py"}
    model = json.loads(files["model.json"])
    assert model["tag"] == "v3 run"
    assert model["labels"] == ["a", "b", "c"]

    lines = job_log(local_aws.client("logs"), result["TrainingJobName"])
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert metrics == {
        "centroid:loss": pytest.approx(last_printed(lines, "CENTROID epoch=2", "loss")),
        "centroid:accuracy": pytest.approx(last_printed(lines, "CENTROID epoch=2", "accuracy")),
    }
    assert metrics["centroid:accuracy"] == 1.0
    # sm_train.sh's `command -v python3` found the runtime's interpreter: its requirements layer, not the system's.
    prefix = next(line.split("python=", 1)[1] for line in lines if line.startswith("CENTROID python="))
    assert "/cache/pyenvs/" in prefix and prefix != sys.prefix


def test_core_resources_read_wait_invoke_and_read_the_job(
    sdk3: Path, trained_v3: DriverRun, centroid_endpoint: str, sdk_stack: SdkStack, tmp_path: Path
) -> None:
    """``Endpoint.get`` → ``wait_for_status("InService")`` → ``invoke`` returns one probability row per point.

    ``TrainingJob.get`` reads back the ModelTrainer job with the same artifact and final metrics.
    """
    points = [[0.0, 0.0], [5.0, 5.0], [0.0, 5.0], [4.8, 5.3]]
    env = sdk_env(
        sdk_stack,
        tmp_path / "home",
        SDK_ENDPOINT_NAME=centroid_endpoint,
        SDK_PAYLOAD=json.dumps({"instances": points}),
        SDK_TRAINING_JOB_NAME=trained_v3.result["TrainingJobName"],
    )
    result: dict[str, Any] = run_driver(sdk3, "sdk3_core_resources.py", env, timeout=120).result
    assert result["EndpointStatus"] == "InService"
    assert result["EndpointArn"] == f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{centroid_endpoint}"
    assert result["ContentType"] == "application/json"
    assert result["InvokedProductionVariant"] == "AllTraffic"
    body = result["Body"]
    assert body["labels"] == ["a", "b", "c"]
    rows = body["predictions"]
    assert [len(row) for row in rows] == [3, 3, 3, 3]
    assert all(sum(row) == pytest.approx(1.0) for row in rows)
    assert [body["labels"][row.index(max(row))] for row in rows] == ["a", "b", "c", "b"]
    job = result["TrainingJob"]
    assert job["TrainingJobStatus"] == "Completed"
    assert job["S3ModelArtifacts"] == trained_v3.result["S3ModelArtifacts"]
    assert set(job["FinalMetrics"]) == {"centroid:loss", "centroid:accuracy"}
