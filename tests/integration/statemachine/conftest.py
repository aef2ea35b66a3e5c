"""Fixtures: the deployed state machine on the session's local AWS, with the dataset and training code uploaded.

CPU is the budget here: the session's one local AWS, one rendered dataset and one source upload serve the whole
directory. The SageMaker state (jobs, models, the endpoint) carries over from test to test on purpose; the ``fresh``
and ``serving`` fixtures put the endpoint in the state a test needs, reusing what an earlier test left where they can.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from local_aws.constants import TRAINING_DIR
from tests.integration.local_aws_fixtures import Aws
from tests.integration.statemachine.sfn_helpers import (
    DATA_PREFIX,
    SOURCE_KEY,
    Deployment,
    Stack,
    read_deployment,
    remove_endpoint,
    run,
    scalable_targets,
    sfn_event,
    upload_tree,
)
from tools.dataset import render_digits
from tools.source_package import package_source


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 px digits: 1,259 train / 269 valid / 269 test images, 10 classes; smallcnn reaches ~0.9 in 2 epochs."""
    return render_digits(tmp_path_factory.mktemp("digits16"), size=16)


@pytest.fixture(scope="session")
def stack(local_aws: Aws, dataset: Path) -> Stack:
    """The deployed stack, with the dataset and the packaged training/ uploaded (S3 API) where the events point."""
    deployed = Stack.of(local_aws)
    upload_tree(deployed.s3, dataset, deployed.outputs["DataBucketName"], DATA_PREFIX)
    deployed.s3.put_object(
        Bucket=deployed.outputs["ArtifactBucketName"], Key=SOURCE_KEY, Body=package_source(TRAINING_DIR).data
    )
    return deployed


@pytest.fixture(scope="session")
def test_image(dataset: Path) -> bytes:
    """One held-out JPEG from the rendered dataset."""
    return next(p for p in sorted((dataset / "test").rglob("*.jpg"))).read_bytes()


@pytest.fixture
def fresh(stack: Stack) -> Stack:
    """The stack with no endpoint and no autoscaling: the next execution creates the endpoint."""
    remove_endpoint(stack)
    return stack


@pytest.fixture
def serving(stack: Stack) -> Deployment:
    """An InService endpoint deployed by an execution (with its autoscaling); deploys one only when none is left."""
    current = read_deployment(stack)
    if current is not None and scalable_targets(stack):
        return current
    remove_endpoint(stack)
    record = run(stack, sfn_event("local_small", stack), f"serving-{uuid.uuid4().hex[:8]}")
    assert record.status == "SUCCEEDED", record.why
    deployed = read_deployment(stack)
    assert deployed is not None
    return deployed
