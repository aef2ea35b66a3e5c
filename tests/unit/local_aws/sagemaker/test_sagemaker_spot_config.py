"""[chaos.spot] parsing, the StopTrainingJob grace in AWS time, and what CreateTrainingJob refuses for managed spot."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_aws import chaos
from local_aws.clock import ENV_TIME_SCALE
from local_aws.processes import ProcessSupervisor
from local_aws.sagemaker.training import spot
from local_aws.sagemaker.training.runner import ENV_STOP_GRACE, JobContext
from tests.unit.local_aws.sagemaker.sagemaker_app import LocalSageMaker, training_job_request


def test_an_absent_section_interrupts_nothing() -> None:
    assert spot.parse({}) is None


def test_a_section_reads_its_three_keys_with_defaults() -> None:
    assert spot.parse({"after_seconds": 20}) == spot.SpotChaos(20.0, 1, spot.DEFAULT_CAPACITY_WAIT_S)
    assert spot.parse({"after_seconds": 0, "times": 2, "capacity_wait_seconds": 5}) == spot.SpotChaos(0.0, 2, 5.0)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("after = 20", "unknown key 'after'; valid keys: after_seconds, times, capacity_wait_seconds"),
        ("times = 1", "after_seconds is required"),
        ("after_seconds = -1", "after_seconds = -1 is not valid; valid: a number of AWS seconds >= 0"),
        ("after_seconds = 1\ntimes = 1.5", "times = 1.5 is not valid; valid: an integer >= 0"),
        ('after_seconds = 1\ncapacity_wait_seconds = "x"', "capacity_wait_seconds = 'x' is not valid"),
    ],
)
def test_a_bad_section_names_the_key_and_the_valid_values(body: str, named: str) -> None:
    with pytest.raises(chaos.ChaosConfigError) as caught:
        spot.parse(tomllib.loads(body))
    assert named in str(caught.value)


def _context(tmp_path: Path) -> JobContext:
    return JobContext(tmp_path, tmp_path, ProcessSupervisor(tmp_path / "p.json"), logs=None)  # type: ignore[arg-type]


def test_the_stop_grace_is_aws_120_seconds_scaled_unless_overridden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_STOP_GRACE, raising=False)
    monkeypatch.setenv(ENV_TIME_SCALE, "1")
    context = _context(tmp_path)
    assert context.stop_grace() == 120.0
    monkeypatch.setenv(ENV_TIME_SCALE, "3600")
    assert context.stop_grace() == pytest.approx(120 / 3600)
    monkeypatch.setenv(ENV_STOP_GRACE, "0.5")  # real seconds: keeps tests fast whatever the scale
    assert context.stop_grace() == 0.5


def _spot_job(name: str, **stopping: Any) -> dict[str, Any]:
    return {**training_job_request(name), "EnableManagedSpotTraining": True, "StoppingCondition": stopping}


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (_spot_job("no-wait", MaxRuntimeInSeconds=60), "It must be present and be greater than or equal to"),
        (_spot_job("short", MaxRuntimeInSeconds=60, MaxWaitTimeInSeconds=30), "greater than or equal to"),
        (
            {
                **training_job_request("on-demand"),
                "StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 120},
            },
            "It is only supported when EnableManagedSpotTraining is set to true",
        ),
    ],
)
def test_create_refuses_a_max_wait_that_spot_training_does_not_allow(
    local_sagemaker: LocalSageMaker, request_: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError) as caught:
        local_sagemaker.client().create_training_job(**request_)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert message in caught.value.response["Error"]["Message"]


def test_create_refuses_a_spot_job_while_the_spot_section_is_bad(local_sagemaker: LocalSageMaker) -> None:
    local_sagemaker.chaos("[chaos.spot]\nafter_seconds = -5\n")
    with pytest.raises(ClientError) as caught:
        local_sagemaker.client().create_training_job(
            **_spot_job("bad-chaos", MaxRuntimeInSeconds=60, MaxWaitTimeInSeconds=120)
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "[chaos.spot] after_seconds = -5 is not valid" in caught.value.response["Error"]["Message"]
