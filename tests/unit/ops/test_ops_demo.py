"""ops.demo: the demo's execution input has the cloud input's shape, so the same ASL runs it."""

from __future__ import annotations

from local_aws.constants import REPO_ROOT
from ops.demo import DEMO_EPOCHS, execution_input
from ops.executions import load_input


def test_demo_input_has_the_cloud_shape() -> None:
    """The top-level keys of the recorded execution inputs, string hyperparameters, fast polling."""
    doc = execution_input("s3://data/datasets/x/", "s3://art/code/sourcedir-abc.tar.gz", instance_count=2)
    shipped = set()
    for name in ("sfn_local_small.json", "sfn_tuning.json"):  # the recorded inputs, with and without tuning
        shipped |= set(load_input(REPO_ROOT / "tests" / "events" / name))
    assert set(doc) == shipped
    assert doc["TrainingData"] == "s3://data/datasets/x/"
    assert doc["SourceDir"] == "s3://art/code/sourcedir-abc.tar.gz"
    assert doc["Training"]["InstanceCount"] == 2
    assert doc["Polling"]["IntervalSeconds"] == 1
    assert doc["Hyperparameters"]["arch"] == "smallcnn"
    assert doc["Hyperparameters"]["epochs"] == str(DEMO_EPOCHS)
    assert all(isinstance(v, str) for v in doc["Hyperparameters"].values())  # SageMaker hyperparameters are strings
    assert doc["Tuning"]["Enabled"] is False


def test_demo_input_options() -> None:
    """HPO, the accuracy gate and extra hyperparameters (as strings) are applied."""
    doc = execution_input(
        "s3://d/", "s3://s.tar.gz", hpo=True, min_test_accuracy=0.5, extra_hyperparameters={"seed": 7}
    )
    assert doc["Tuning"]["Enabled"] is True and doc["Tuning"]["MaxJobs"] >= 1
    assert doc["Gate"]["MinTestAccuracy"] == 0.5
    assert doc["Hyperparameters"]["seed"] == "7"
