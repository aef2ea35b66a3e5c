"""A real tiny model served by the local SageMaker, for the local API tests (built once per module)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[3]
ENDPOINT = "dogbreed-dev"  # ${ProjectName}-${EnvironmentName} with the template defaults (CONTRACTS §5)


def train_tiny_model(home: Path) -> str:
    """Train smallcnn for one epoch on a small slice of the embedded data; return the model.tar.gz S3 URI."""
    from tools import dataset

    data = dataset.render_digits(home / "s3" / "bench-data" / "digits", size=32, per_class=12)
    model_dir, out_dir = home / "train" / "model", home / "train" / "output"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRAINING_JOB_NAME": "local-api-test-model"}
    cmd = [
        sys.executable, str(REPO / "training" / "train.py"),
        "--arch", "smallcnn", "--image-size", "32", "--epochs", "1", "--batch-size", "16",
        "--pretrained", "none", "--num-workers", "0", "--learning-rate", "0.01",
        "--data-dir", str(data), "--model-dir", str(model_dir),
        "--output-data-dir", str(out_dir / "data"), "--output-dir", str(out_dir),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, env=env, cwd=REPO, capture_output=True, timeout=300)
    tar_path = home / "s3" / "artifacts" / "models" / "model.tar.gz"
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path, "w:gz") as tar:
        for item in sorted(model_dir.iterdir()):
            tar.add(item, arcname=item.name)
    return "s3://artifacts/models/model.tar.gz"


def deploy(url: str, model_data: str, name: str = ENDPOINT) -> None:
    client = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1")
    role = "arn:aws:iam::123456789012:role/local-sagemaker"
    client.create_model(
        ModelName=f"{name}-m1",
        ExecutionRoleArn=role,
        PrimaryContainer={"Image": "local/pytorch-inference:cpu", "ModelDataUrl": model_data},
    )
    client.create_endpoint_config(
        EndpointConfigName=f"{name}-c1",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": f"{name}-m1", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large"}
        ],
    )  # fmt: skip
    client.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c1")
    client.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 180})


@pytest.fixture(scope="module")
def served_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(home, sagemaker_url) with ENDPOINT in service on a freshly trained smallcnn."""
    from local_runtime.sagemaker.server import SageMakerServer

    home = tmp_path_factory.mktemp("local-api-home")
    model_data = train_tiny_model(home)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            mp.setenv(key, value)
        server = SageMakerServer(home).start()
        try:
            deploy(server.url, model_data)
            yield home, server.url
        finally:
            server.stop()
