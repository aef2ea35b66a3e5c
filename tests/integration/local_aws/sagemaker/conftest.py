"""Fixtures of the local SageMaker tests: clients on the session's local AWS, the tiny code and data, a trained job.

Everything is uploaded with the S3 API into the stack's own buckets and trained with the stack's SageMaker role.
Endpoint names here never collide with the stack's ``dogbreed-dev`` (other tests of the session use it).
"""

from __future__ import annotations

from typing import Any

import pytest
from sagemaker_helpers import Stack, job_request, put_source, tiny_files, train

from tests.integration.local_aws_fixtures import Aws

# Key prefixes of this test folder inside the stack's buckets.
CODE_PREFIX = "tests/sagemaker/code"
DATA_PREFIX = "tests/sagemaker/data"


@pytest.fixture(scope="session")
def stack(local_aws: Aws) -> Stack:
    """The stack's buckets and SageMaker execution role."""
    return Stack(
        data_bucket=local_aws.output("DataBucketName"),
        artifact_bucket=local_aws.output("ArtifactBucketName"),
        role=local_aws.output("SageMakerExecutionRoleArn"),
    )


@pytest.fixture(scope="session")
def sm(local_aws: Aws) -> Any:
    """The SageMaker control plane over HTTP."""
    return local_aws.client("sagemaker")


@pytest.fixture(scope="session")
def smr(local_aws: Aws) -> Any:
    """The SageMaker runtime (InvokeEndpoint) over HTTP."""
    return local_aws.client("sagemaker-runtime")


@pytest.fixture(scope="session")
def s3(local_aws: Aws) -> Any:
    """S3 of the local AWS (code, data, checkpoints and artifacts go through it)."""
    return local_aws.client("s3")


@pytest.fixture(scope="session")
def logs(local_aws: Aws) -> Any:
    """CloudWatch Logs of the local AWS (where training hosts' lines land)."""
    return local_aws.client("logs")


@pytest.fixture(scope="session")
def tiny_source(s3: Any, stack: Stack) -> str:
    """``tiny_train.py`` + ``tiny_inference.py`` as an ``s3://`` sourcedir tarball."""
    return put_source(s3, stack.artifact_bucket, f"{CODE_PREFIX}/tiny/sourcedir.tar.gz", tiny_files())


@pytest.fixture(scope="session")
def tiny_data(s3: Any, stack: Stack) -> str:
    """Four one-line text files (``i i``) under one prefix: the ``train`` channel of the tiny jobs."""
    for i in range(4):
        s3.put_object(Bucket=stack.data_bucket, Key=f"{DATA_PREFIX}/train/part-{i}.txt", Body=f"{i} {i}".encode())
    return f"s3://{stack.data_bucket}/{DATA_PREFIX}/train"


@pytest.fixture(scope="session")
def trained(sm: Any, stack: Stack, tiny_source: str, tiny_data: str) -> dict[str, Any]:
    """``tiny-2hosts``: two hosts, ShardedByS3Key, one torch.distributed group; its model serves the endpoint tests."""
    request = job_request(stack, "tiny-2hosts", tiny_source, tiny_data, count=2, sharded=True, scale="0.5")
    return train(sm, request)
