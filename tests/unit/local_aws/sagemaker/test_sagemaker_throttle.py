"""[chaos.throttle]: ThrottlingException from the local SageMaker, as real boto3 clients see it and retry it."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_aws import chaos
from local_aws.sagemaker import throttle
from tests.unit.local_aws.sagemaker.sagemaker_app import LocalSageMaker

BURST_2 = '[chaos.throttle]\noperations = ["ListTrainingJobs"]\nburst = 2\n'


def _error(call: Any, **params: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return dict(caught.value.response)


def test_a_burst_throttles_the_next_n_calls_with_the_services_code_status_and_message(
    local_sagemaker: LocalSageMaker,
) -> None:
    sm = local_sagemaker.client()
    local_sagemaker.chaos(BURST_2)
    for _ in range(2):
        response = _error(sm.list_training_jobs)
        assert response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []  # the burst is spent
    assert sm.list_endpoints()["Endpoints"] == []  # never named: never throttled


def test_rewriting_the_config_rearms_the_burst_per_operation(local_sagemaker: LocalSageMaker) -> None:
    sm = local_sagemaker.client()
    config = '[chaos.throttle]\noperations = ["ListTrainingJobs", "ListEndpoints"]\nburst = 1\n'
    local_sagemaker.chaos(config)
    assert _error(sm.list_training_jobs)["Error"]["Code"] == "ThrottlingException"
    assert _error(sm.list_endpoints)["Error"]["Code"] == "ThrottlingException"  # its own burst
    sm.list_training_jobs()
    local_sagemaker.chaos(config)
    assert _error(sm.list_training_jobs)["Error"]["Code"] == "ThrottlingException"


@pytest.mark.parametrize("mode", ["standard", "legacy"])
def test_botocore_retries_the_throttle_in_both_retry_modes(local_sagemaker: LocalSageMaker, mode: str) -> None:
    """Standard mode matches the code; legacy mode needs code ThrottlingException *and* HTTP 400."""
    local_sagemaker.chaos(BURST_2)
    sm = local_sagemaker.client(retries={"mode": mode, "total_max_attempts": 3})
    response = sm.list_training_jobs()
    assert response["ResponseMetadata"]["RetryAttempts"] == 2


def test_a_rate_throttles_that_share_of_calls_reproducibly_from_the_seed(local_sagemaker: LocalSageMaker) -> None:
    sm = local_sagemaker.client()

    def throttled_calls() -> list[bool]:
        local_sagemaker.chaos('[chaos.throttle]\noperations = ["*"]\nrate = 0.5\nseed = 7\n')
        outcomes = []
        for _ in range(40):
            try:
                sm.list_models()
                outcomes.append(False)
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "ThrottlingException"
                outcomes.append(True)
        return outcomes

    first = throttled_calls()
    assert 8 < sum(first) < 32
    assert throttled_calls() == first


def test_invoke_endpoint_is_throttled_only_when_named(local_sagemaker: LocalSageMaker) -> None:
    smr = local_sagemaker.client("sagemaker-runtime")
    local_sagemaker.chaos('[chaos.throttle]\noperations = ["*"]\nburst = 5\n')
    not_found = _error(smr.invoke_endpoint, EndpointName="nope", Body=b"{}")
    assert not_found["Error"]["Code"] == "ValidationError"
    local_sagemaker.chaos('[chaos.throttle]\noperations = ["InvokeEndpoint"]\nburst = 1\n')
    response = _error(smr.invoke_endpoint, EndpointName="nope", Body=b"{}")
    assert response["Error"]["Code"] == "ThrottlingException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("bursts = 1", "unknown key 'bursts'; valid keys: operations, burst, rate, seed"),
        ('operations = ["DescribeTrainingJobs"]', "operations = 'DescribeTrainingJobs' is not valid"),
        ('operations = "DescribeTrainingJob"', "operations = 'DescribeTrainingJob' is not valid"),
        ("burst = -1", "burst = -1 is not valid; valid: an integer >= 0"),
        ("rate = 1.5", "rate = 1.5 is not valid; valid: a number from 0 to 1"),
        ('seed = "x"', "seed = 'x' is not valid; valid: an integer"),
    ],
)
def test_a_bad_section_names_the_key_and_the_valid_values(body: str, named: str) -> None:
    with pytest.raises(chaos.ChaosConfigError) as caught:
        throttle.parse(tomllib.loads(body))
    assert named in str(caught.value)


def test_a_bad_section_is_a_400_naming_it_not_a_500(local_sagemaker: LocalSageMaker) -> None:
    local_sagemaker.chaos("[chaos.throttle]\nrate = 2\n")
    response = _error(local_sagemaker.client().list_models)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"]["Code"] == "ValidationException"
    assert "[chaos.throttle] rate = 2 is not valid" in response["Error"]["Message"]


def test_no_section_throttles_nothing(local_sagemaker: LocalSageMaker) -> None:
    local_sagemaker.chaos("[chaos.spot]\ntimes = 1\n")
    sm = local_sagemaker.client()
    for _ in range(5):
        sm.list_models()
