"""The real training/train.py and training/inference.py through the local SageMaker: 2 hosts, torchrun, serving.

The digits recipe (small CNN, 16 px, a few steps) keeps it to about a minute on 2 CPU cores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sagemaker_helpers import WAIT, Stack, deploy, host_log, real_training_request

from local_aws.constants import TRAINING_DIR
from ops.data import upload_data
from tools.dataset import render_digits
from tools.source_package import package_source

pytestmark = [pytest.mark.slow, pytest.mark.distributed]
DATA_PREFIX = "tests/sagemaker/digits-16px/"


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded digits dataset, 16 px, 20 images per class (train/ valid/ test/)."""
    return render_digits(tmp_path_factory.mktemp("digits") / "data", size=16, seed=0, per_class=20)


@pytest.fixture(scope="module")
def ddp_job(sm: Any, s3: Any, stack: Stack, digits: Path) -> dict[str, Any]:
    """``real-ddp``: training/ packaged as the SDK would, two hosts, torch_distributed (torchrun)."""
    upload_data(s3, digits, stack.data_bucket, DATA_PREFIX)
    package = package_source(TRAINING_DIR)
    key = f"tests/sagemaker/code/{package.name}"
    s3.put_object(Bucket=stack.artifact_bucket, Key=key, Body=package.data)
    request = real_training_request(
        stack,
        "real-ddp",
        f"s3://{stack.artifact_bucket}/{key}",
        f"s3://{stack.data_bucket}/{DATA_PREFIX}",
        count=2,
        instance_type="ml.m5.xlarge",
        sagemaker_torch_distributed_enabled="true",
        **{"max-steps": "5"},
    )
    sm.create_training_job(**request)
    sm.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName="real-ddp", WaiterConfig={"Delay": 1, "MaxAttempts": 600}
    )
    job: dict[str, Any] = sm.describe_training_job(TrainingJobName="real-ddp")
    return job


def test_real_two_host_training_then_serving(
    sm: Any, smr: Any, logs: Any, stack: Stack, digits: Path, ddp_job: dict[str, Any]
) -> None:
    """train.py joins one torch.distributed group across both hosts, reports its metrics, and the artifact serves
    real predictions through inference.py."""
    assert ddp_job["TrainingJobStatus"] == "Completed", ddp_job.get("FailureReason")
    metrics = {m["MetricName"]: m["Value"] for m in ddp_job["FinalMetricDataList"]}
    assert {"train:loss", "valid:top1", "test:top1"} <= set(metrics)
    assert 0.0 <= metrics["test:top1"] <= 1.0
    assert "world 2" in host_log(logs, "real-ddp", "algo-1")  # both hosts joined one torch.distributed group

    deploy(sm, stack.role, "real-ddp", ddp_job["ModelArtifacts"]["S3ModelArtifacts"])
    sm.create_endpoint(EndpointName="real-ddp", EndpointConfigName="real-ddp")
    try:
        sm.get_waiter("endpoint_in_service").wait(EndpointName="real-ddp", WaiterConfig=WAIT)
        image = next(p for p in sorted((digits / "test").rglob("*")) if p.is_file())
        content_type = "image/png" if image.suffix == ".png" else "image/jpeg"
        response = smr.invoke_endpoint(EndpointName="real-ddp", Body=image.read_bytes(), ContentType=content_type)
        body = json.loads(response["Body"].read())
        assert body["model_version"] == "real-ddp"
        top = body["predictions"][0]
        assert top == sorted(top, key=lambda p: -p["probability"]) and 0.0 <= top[0]["probability"] <= 1.0
    finally:
        sm.delete_endpoint(EndpointName="real-ddp")
