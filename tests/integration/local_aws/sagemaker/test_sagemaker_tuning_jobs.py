"""Hyperparameter tuning on the local SageMaker through boto3 over HTTP: real training jobs, the best one reported."""

from __future__ import annotations

from typing import Any

import pytest
from sagemaker_helpers import RawResponses, Stack, assert_output_shape, job_request, wait_for

from tests.integration.local_aws_fixtures import Aws


@pytest.fixture(scope="module")
def grid(local_aws: Aws, stack: Stack, tiny_source: str, tiny_data: str) -> dict[str, Any]:
    """``tiny-grid``: Grid over ``scale`` in {0.5, 2}; its raw DescribeHyperParameterTuningJob answers."""
    raw = RawResponses(local_aws.client("sagemaker"))
    definition = job_request(stack, "unused", tiny_source, tiny_data)
    definition.pop("TrainingJobName")
    definition["StaticHyperParameters"] = definition.pop("HyperParameters")
    raw.client.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="tiny-grid",
        HyperParameterTuningJobConfig={
            "Strategy": "Grid",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "valid:top1"},
            "ResourceLimits": {"MaxParallelTrainingJobs": 1},
            "ParameterRanges": {"CategoricalParameterRanges": [{"Name": "scale", "Values": ["0.5", "2"]}]},
        },
        TrainingJobDefinition=definition,
    )
    in_progress = raw.call("DescribeHyperParameterTuningJob", HyperParameterTuningJobName="tiny-grid")
    done = wait_for(
        lambda: raw.call("DescribeHyperParameterTuningJob", HyperParameterTuningJobName="tiny-grid"),
        lambda d: d["HyperParameterTuningJobStatus"] != "InProgress",
        timeout=180,
        every=0.5,
    )
    return {"in_progress": in_progress, "done": done}


def test_grid_tuning_runs_real_jobs_and_reports_the_best(sm: Any, grid: dict[str, Any]) -> None:
    """Each grid point is a real training job; the best is the one with the highest objective metric."""
    desc = grid["done"]
    assert desc["HyperParameterTuningJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["TrainingJobStatusCounters"]["Completed"] == 2
    best = desc["BestTrainingJob"]
    assert best["TunedHyperParameters"] == {"scale": "2"}
    assert best["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "Type": "Maximize",
        "MetricName": "valid:top1",
        "Value": pytest.approx(0.8),
    }
    jobs = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="tiny-grid")
    assert len(jobs["TrainingJobSummaries"]) == 2
    described = sm.describe_training_job(TrainingJobName=best["TrainingJobName"])
    assert described["HyperParameters"]["_tuning_objective_metric"] == "valid:top1"
    assert described["TuningJobArn"] == desc["HyperParameterTuningJobArn"]


def test_describe_tuning_job_matches_botocore_shape(grid: dict[str, Any]) -> None:
    """InProgress and Completed DescribeHyperParameterTuningJob answers fit botocore's output shape."""
    assert grid["in_progress"]["HyperParameterTuningJobStatus"] == "InProgress"
    assert_output_shape("DescribeHyperParameterTuningJob", grid["in_progress"])
    assert grid["done"]["HyperParameterTuningJobStatus"] == "Completed"
    assert_output_shape("DescribeHyperParameterTuningJob", grid["done"])
