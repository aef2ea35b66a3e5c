"""[chaos.throttle] and [chaos.quota] on the running local AWS (through the SigV4 edge), as SDK users meet them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chaos_helpers import ChaosFile
from sagemaker_helpers import Stack, job_request, wait_for, wait_job

from local_aws import chaos
from tests.integration.local_aws_fixtures import Aws


@pytest.fixture
def chaos_file(local_aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[ChaosFile]:
    monkeypatch.delenv(chaos.ENV_CONFIG, raising=False)
    file = ChaosFile(local_aws.home)
    try:
        yield file
    finally:
        file.remove()


def test_a_throttle_burst_is_retried_away_by_botocore_standard_mode(local_aws: Aws, chaos_file: ChaosFile) -> None:
    chaos_file.write('[chaos.throttle]\noperations = ["ListTrainingJobs"]\nburst = 3\n')
    no_retries = local_aws.client("sagemaker", retries=0)  # botocore's max_attempts counts retries
    with pytest.raises(ClientError) as caught:
        no_retries.list_training_jobs()
    assert caught.value.response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    retrying = local_aws.client("sagemaker", retries=3)
    response = retrying.list_training_jobs()  # the two throttles left in the burst, then the answer
    assert response["ResponseMetadata"]["RetryAttempts"] == 2


def test_a_training_quota_counts_the_running_job_until_it_ends(
    sm: Any, stack: Stack, tiny_source: str, tiny_data: str, chaos_file: ChaosFile
) -> None:
    chaos_file.write('[chaos.quota.training]\n"ml.m5.large" = 1\n')
    stamp = int(time.time())
    first = job_request(stack, f"quota-first-{stamp}", tiny_source, tiny_data, epochs="3", sleep="1")
    second = job_request(stack, f"quota-second-{stamp}", tiny_source, tiny_data, epochs="1")
    sm.create_training_job(**first)
    with pytest.raises(sm.exceptions.ResourceLimitExceeded) as caught:
        sm.create_training_job(**second)
    assert caught.value.response["Error"]["Message"].startswith(
        "The account-level service limit 'ml.m5.large for training job usage' is 1 Instances, with current "
        "utilization of 1 Instances and a request delta of 1 Instances."
    )
    assert wait_job(sm, first["TrainingJobName"])["TrainingJobStatus"] == "Completed"
    sm.create_training_job(**second)  # the first job's instance is free again
    wait_for(
        lambda: sm.describe_training_job(TrainingJobName=second["TrainingJobName"])["TrainingJobStatus"],
        lambda status: status != "InProgress",
        timeout=120,
    )
