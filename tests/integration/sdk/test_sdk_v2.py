"""The sagemaker SDK v2 (``.venv-sdk2``, sagemaker>=2.250,<3) against the local runtime, without Docker.

``Predictor.predict`` on a local endpoint, and ``PyTorch(...).fit({"training": "s3://..."})`` (the training toolkit
form: ``sagemaker_program`` + ``sagemaker_submit_directory``) with a tiny script and with the project's train.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.local_aws_fixtures import Aws
from tests.integration.sdk.sdk_helpers import (
    CENTROID_METRICS,
    CENTROID_SOURCE,
    REPO,
    SDK2_VENV,
    TRAINING_IMAGE,
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
def sdk2() -> Path:
    """The v2 venv's interpreter (skips the module when the venv is missing)."""
    return sdk_python(SDK2_VENV, 2)


def _fit_env(stack: SdkStack, home: Path, **extra: str) -> dict[str, str]:
    return sdk_env(
        stack,
        home,
        SDK_ROLE_ARN=stack.role,
        SDK_BUCKET=stack.artifact_bucket,
        SDK_CODE_LOCATION=f"s3://{stack.artifact_bucket}/code",  # the role reads code/* of the artifact bucket
        SDK_OUTPUT_PATH=f"s3://{stack.artifact_bucket}/training-output/sdk2",
        SDK_FRAMEWORK_VERSION="2.5.1",
        SDK_PY_VERSION="py311",
        **extra,
    )


def test_predictor_predict_returns_one_probability_row_per_point(
    sdk2: Path, centroid_endpoint: str, sdk_stack: SdkStack, tmp_path: Path
) -> None:
    """``Predictor(endpoint, JSONSerializer, JSONDeserializer).predict`` gets the model's answer, shape (n, 3)."""
    points = [[0.1, 0.2], [5.2, 4.9], [-0.3, 5.1]]
    env = sdk_env(
        sdk_stack, tmp_path / "home", SDK_ENDPOINT_NAME=centroid_endpoint, SDK_PAYLOAD=json.dumps({"instances": points})
    )
    prediction = run_driver(sdk2, "sdk2_predict.py", env, timeout=120).result["Prediction"]
    assert prediction["labels"] == ["a", "b", "c"]
    rows = prediction["predictions"]
    assert [len(row) for row in rows] == [3, 3, 3]
    assert all(sum(row) == pytest.approx(1.0) for row in rows)
    assert [prediction["labels"][row.index(max(row))] for row in rows] == ["a", "b", "c"]


def test_pytorch_fit_runs_the_script_through_the_training_toolkit_form(
    sdk2: Path, sdk_stack: SdkStack, local_aws: Aws, tmp_path: Path
) -> None:
    """``PyTorch.fit`` completes: the DLC image URI resolved offline, the source bundle under ``code_location``.

    The toolkit HPs point at that bundle, the user HPs reach the script, model.tar.gz lands under ``output_path``, and
    FinalMetricDataList holds the value the script printed last.
    """
    env = _fit_env(
        sdk_stack,
        tmp_path / "home",
        SDK_SOURCE_DIR=str(CENTROID_SOURCE),
        SDK_ENTRY_SCRIPT="centroid_train.py",
        SDK_TRAIN_URI=sdk_stack.centroid_data,
        SDK_HYPERPARAMETERS=json.dumps({"epochs": 3, "tag": "v2"}),
        SDK_METRIC_DEFINITIONS=json.dumps(CENTROID_METRICS),
        SDK_BASE_JOB_NAME="sdk2-centroid",
    )
    result = run_driver(sdk2, "sdk2_pytorch_fit.py", env).result
    assert result["TrainingJobStatus"] == "Completed"
    assert result["TrainingImage"] == TRAINING_IMAGE
    name = result["TrainingJobName"]
    job = local_aws.client("sagemaker").describe_training_job(TrainingJobName=name)
    hps = job["HyperParameters"]
    assert json.loads(hps["sagemaker_program"]) == "centroid_train.py"
    assert json.loads(hps["sagemaker_submit_directory"]) == (
        f"s3://{sdk_stack.artifact_bucket}/code/{name}/source/sourcedir.tar.gz"
    )
    assert (
        result["S3ModelArtifacts"]
        == f"s3://{sdk_stack.artifact_bucket}/training-output/sdk2/{name}/output/model.tar.gz"
    )
    files = read_tar(s3_bytes(local_aws.client("s3"), result["S3ModelArtifacts"]))
    assert json.loads(files["model.json"])["tag"] == "v2"
    assert "code/centroid_inference.py" in files
    lines = job_log(local_aws.client("logs"), name)
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert metrics["centroid:loss"] == pytest.approx(last_printed(lines, "CENTROID epoch=3", "loss"))
    assert metrics["centroid:accuracy"] == 1.0


@pytest.fixture(scope="module")
def digits_uri(sdk_stack: SdkStack, local_aws: Aws, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The digits dataset (16 px, 10 images per class) rendered by ``tools.dataset`` and uploaded under datasets/."""
    from tools.dataset import render_digits

    root = render_digits(tmp_path_factory.mktemp("digits"), size=16, per_class=10)
    s3 = local_aws.client("s3")
    prefix = "datasets/sdk-digits/"
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        s3.upload_file(str(path), sdk_stack.data_bucket, prefix + path.relative_to(root).as_posix())
    return f"s3://{sdk_stack.data_bucket}/{prefix}"


def test_pytorch_fit_runs_the_projects_train_py_on_digits(
    sdk2: Path, sdk_stack: SdkStack, local_aws: Aws, digits_uri: str, tmp_path: Path
) -> None:
    """The project's training/train.py with its small recipe completes through ``PyTorch.fit``.

    Its artifact holds the weights, classes and metadata train.py writes (with the hyperparameters the SDK sent), and
    the project's metric definitions capture the test split's top-1 it printed.
    """
    metric_definitions = json.loads((REPO / "training" / "metric_definitions.json").read_text())
    recipe = {"arch": "smallcnn", "image-size": 16, "epochs": 1, "max-steps": 2, "pretrained": "none", "num-workers": 0}
    env = _fit_env(
        sdk_stack,
        tmp_path / "home",
        SDK_SOURCE_DIR=str(REPO / "training"),
        SDK_ENTRY_SCRIPT="train.py",
        SDK_TRAIN_URI=digits_uri,
        SDK_HYPERPARAMETERS=json.dumps(recipe),
        SDK_METRIC_DEFINITIONS=json.dumps(metric_definitions),
        SDK_BASE_JOB_NAME="sdk2-train-py",
        SDK_LOGS="None",  # the SDK's CloudWatch tailing polls every 10 s and re-describes every 30 s: wait() is faster
    )
    result = run_driver(sdk2, "sdk2_pytorch_fit.py", env, timeout=300).result
    assert result["TrainingJobStatus"] == "Completed"
    files = read_tar(s3_bytes(local_aws.client("s3"), result["S3ModelArtifacts"]))
    assert set(files) >= {"model.pth", "classes.json", "metadata.json"}
    assert len(json.loads(files["classes.json"])) == 10
    metadata = json.loads(files["metadata.json"])
    assert metadata["hyperparameters"]["image-size"] == 16 and metadata["hyperparameters"]["max-steps"] == 2
    assert "code/inference.py" in files
    job = local_aws.client("sagemaker").describe_training_job(TrainingJobName=result["TrainingJobName"])
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    lines = job_log(local_aws.client("logs"), result["TrainingJobName"])
    assert metrics["test:top1"] == pytest.approx(last_printed(lines, "METRIC split=test", "top1"))
    assert set(metrics) >= {"train:loss", "valid:top1", "test:top1"}
