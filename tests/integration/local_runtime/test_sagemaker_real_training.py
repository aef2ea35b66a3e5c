"""The real training/train.py and training/inference.py through the local SageMaker: 2 hosts, torchrun, serve."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from local_runtime.s3 import LocalS3
from local_runtime.sagemaker.server import SageMakerServer

REPO = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.slow, pytest.mark.distributed]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (REPO / "training" / "train.py").exists():
        pytest.skip("training/train.py not present yet")
    home = tmp_path_factory.mktemp("real-home")
    data = tmp_path_factory.mktemp("data")
    subprocess.run(
        [sys.executable, "-m", "tools.dataset", "render", "--out", str(data), "--size", "32"],
        cwd=REPO, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    s3 = LocalS3(home / "s3")
    s3.upload_dir(data, "s3://data-bucket/datasets/dogImages/")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted((REPO / "training").glob("*")):
            if path.is_file() and path.suffix in (".py", ".json", ".txt"):
                tar.add(path, arcname=path.name)
    s3.put_bytes("s3://artifact-bucket/code/sourcedir.tar.gz", buffer.getvalue())
    return home


def test_real_two_host_training_then_serving(prepared: Path) -> None:
    metric_definitions = json.loads((REPO / "training" / "metric_definitions.json").read_text())
    with SageMakerServer(prepared) as server:
        cfg = Config(region_name="us-east-1")
        sm = boto3.client("sagemaker", endpoint_url=server.url, config=cfg)
        runtime = boto3.client("sagemaker-runtime", endpoint_url=server.url, config=cfg)
        sm.create_training_job(
            TrainingJobName="real-ddp",
            RoleArn="arn:aws:iam::123456789012:role/sagemaker",
            AlgorithmSpecification={
                "TrainingImage": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.6.0-cpu-py312",
                "TrainingInputMode": "File",
                "MetricDefinitions": metric_definitions,
            },
            HyperParameters={
                "sagemaker_program": '"train.py"',
                "sagemaker_submit_directory": '"s3://artifact-bucket/code/sourcedir.tar.gz"',
                "sagemaker_torch_distributed_enabled": "true",
                "arch": '"smallcnn"',
                "epochs": "1",
                "image-size": "32",
                "batch-size": "32",
                "num-workers": "0",
                "pretrained": "none",
                "max-steps": "10",
            },
            InputDataConfig=[
                {
                    "ChannelName": "training",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": "s3://data-bucket/datasets/dogImages/",
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
            ],
            OutputDataConfig={"S3OutputPath": "s3://artifact-bucket/models"},
            ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": 900},
        )
        sm.get_waiter("training_job_completed_or_stopped").wait(
            TrainingJobName="real-ddp", WaiterConfig={"Delay": 1, "MaxAttempts": 900}
        )
        job: dict[str, Any] = sm.describe_training_job(TrainingJobName="real-ddp")
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
        assert {"train:loss", "valid:top1", "test:top1"} <= set(metrics)
        assert 0.0 <= metrics["test:top1"] <= 1.0
        log = (prepared / "logs" / "TrainingJobs" / "real-ddp" / "algo-1.log").read_text()
        assert "world 2" in log  # both hosts joined one torch.distributed group

        model_data = job["ModelArtifacts"]["S3ModelArtifacts"]
        sm.create_model(ModelName="real", ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
                        PrimaryContainer={"Image": "local", "ModelDataUrl": model_data})  # fmt: skip
        sm.create_endpoint_config(
            EndpointConfigName="real",
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "real", "InitialInstanceCount": 1,
                                 "InstanceType": "ml.m5.large"}],
        )  # fmt: skip
        sm.create_endpoint(EndpointName="real", EndpointConfigName="real")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="real", WaiterConfig={"Delay": 1, "MaxAttempts": 240})
        test_dir = LocalS3(prepared / "s3").path("s3://data-bucket/datasets/dogImages/test/")
        image = next(p for p in sorted(test_dir.rglob("*")) if p.is_file())
        content_type = "image/png" if image.suffix == ".png" else "image/jpeg"
        response = runtime.invoke_endpoint(EndpointName="real", Body=image.read_bytes(), ContentType=content_type)
        body = json.loads(response["Body"].read())
        assert body["model_version"] == "real-ddp"
        top = body["predictions"][0]
        assert top == sorted(top, key=lambda p: -p["probability"]) and 0.0 <= top[0]["probability"] <= 1.0
