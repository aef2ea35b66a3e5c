"""local_aws.sagemaker.tuning: search spaces of the local hyperparameter tuning (Random and Grid)."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from local_aws.sagemaker.errors import SageMakerError
from local_aws.sagemaker.tuning import grid_points, sample_random, validate_ranges

RANGES: dict[str, Any] = {
    "ContinuousParameterRanges": [
        {"Name": "lr", "MinValue": "0.0001", "MaxValue": "0.1", "ScalingType": "Logarithmic"}
    ],
    "IntegerParameterRanges": [{"Name": "epochs", "MinValue": "1", "MaxValue": "3"}],
    "CategoricalParameterRanges": [{"Name": "arch", "Values": ["resnet18", "resnet34"]}],
}


def test_random_points_stay_inside_every_range_as_strings() -> None:
    """Each sampled point has every parameter, inside its range, as the strings SageMaker passes to jobs."""
    rng = random.Random(7)
    points = [sample_random(RANGES, rng) for _ in range(50)]
    for point in points:
        assert set(point) == {"lr", "epochs", "arch"}
        assert all(isinstance(v, str) for v in point.values())
        assert 0.0001 <= float(point["lr"]) <= 0.1
        assert point["epochs"] in {"1", "2", "3"}
        assert point["arch"] in {"resnet18", "resnet34"}
    # Logarithmic scaling: about as many samples below the geometric midpoint (~0.0032) as above it.
    below = sum(float(p["lr"]) < math.sqrt(0.0001 * 0.1) for p in points)
    assert 10 <= below <= 40


def test_random_sampling_is_reproducible_with_a_seed() -> None:
    """The same seed gives the same trials (a rerun of a tuning job is comparable)."""
    assert sample_random(RANGES, random.Random(3)) == sample_random(RANGES, random.Random(3))


def test_grid_points_are_the_cartesian_product_of_categorical_values() -> None:
    """Grid: every combination exactly once."""
    cats = {"CategoricalParameterRanges": [{"Name": "a", "Values": ["1", "2"]}, {"Name": "b", "Values": ["x", "y"]}]}
    points = grid_points(cats)
    assert len(points) == 4
    assert {(p["a"], p["b"]) for p in points} == {("1", "x"), ("1", "y"), ("2", "x"), ("2", "y")}


@pytest.mark.parametrize(
    ("strategy", "ranges", "message"),
    [
        ("Grid", RANGES, "Grid search supports only CategoricalParameterRanges"),
        ("Grid", {}, "Grid search requires at least one CategoricalParameterRange"),
        (
            "Random",
            {"IntegerParameterRanges": [{"Name": "e", "MinValue": "5", "MaxValue": "1"}]},
            "IntegerParameterRanges e: MinValue 5 is greater than MaxValue 1",
        ),
        (
            "Random",
            {"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "x", "MaxValue": "1"}]},
            "ContinuousParameterRanges lr: MinValue/MaxValue must be numbers",
        ),
        (
            "Random",
            {
                "ContinuousParameterRanges": [
                    {"Name": "lr", "MinValue": "0", "MaxValue": "1", "ScalingType": "Logarithmic"}
                ]
            },
            "Logarithmic scaling requires MinValue > 0",
        ),
        ("Random", {"CategoricalParameterRanges": [{"Name": "arch", "Values": []}]}, "Values must not be empty"),
    ],
)
def test_impossible_search_spaces_are_validation_errors(strategy: str, ranges: dict[str, Any], message: str) -> None:
    """Each impossible space is a ValidationException naming the range."""
    with pytest.raises(SageMakerError, match=message) as info:
        validate_ranges(strategy, ranges)
    assert info.value.code == "ValidationException"


def test_valid_spaces_pass() -> None:
    """The demo's Random space and a categorical Grid are accepted."""
    validate_ranges("Random", RANGES)
    validate_ranges("Grid", {"CategoricalParameterRanges": RANGES["CategoricalParameterRanges"]})
