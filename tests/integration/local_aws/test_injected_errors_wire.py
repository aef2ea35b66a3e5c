"""[[chaos.errors]] on the running local AWS: over HTTP, moto's services and our own answer the injected error in
their protocol, the next ``count`` calls only, then serve again."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.integration.local_aws.sagemaker.chaos_helpers import ChaosFile
from tests.integration.local_aws_fixtures import Aws

RULES = (
    '[[chaos.errors]]\nservice = "iam"\noperation = "ListRoles"\ncode = "ServiceFailure"\ncount = 2\n'
    '[[chaos.errors]]\nservice = "s3"\noperation = "ListBuckets"\ncode = "AccessDenied"\ncount = 1\n'
)


def test_injected_errors_reach_real_clients_over_http_then_stop(local_aws: Aws) -> None:
    iam, s3 = local_aws.client("iam"), local_aws.client("s3")
    chaos = ChaosFile(local_aws.home)
    chaos.write(RULES)
    try:
        # IAM (moto, query protocol): ServiceFailure is modeled with HTTP 500, so botocore retries it (the client
        # allows one retry): one call takes both injected failures.
        with pytest.raises(ClientError) as caught:
            iam.list_roles()
        assert caught.value.response["Error"]["Code"] == "ServiceFailure"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 1
        with pytest.raises(ClientError) as caught:  # S3 (ours, XML): modeled AccessDenied, HTTP 403
            s3.list_buckets()
        assert caught.value.response["Error"]["Code"] == "AccessDenied"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert isinstance(iam.list_roles()["Roles"], list)  # both counts are spent
        assert isinstance(s3.list_buckets()["Buckets"], list)
    finally:
        chaos.remove()
