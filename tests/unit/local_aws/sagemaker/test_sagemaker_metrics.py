"""local_aws.sagemaker.training.metrics: MetricDefinitions over log lines, as DescribeTrainingJob reports them."""

from __future__ import annotations

import json

from local_aws.constants import METRIC_DEFINITIONS_PATH
from local_aws.sagemaker.training.metrics import MetricParser


def test_metric_parser_keeps_the_last_value_of_each_metric() -> None:
    """The shipped MetricDefinitions applied to METRIC lines: last value and its timestamp; bad regexes ignored."""
    definitions = json.loads(METRIC_DEFINITIONS_PATH.read_text())
    parser = MetricParser([*definitions, {"Name": "broken", "Regex": "("}])
    parser.feed("METRIC split=valid epoch=1 loss=0.5 top1=0.250000 top5=0.9 samples=10", 1.0)
    parser.feed("noise", 2.0)
    parser.feed("METRIC split=valid epoch=2 loss=0.4 top1=0.500000 top5=0.9 samples=10", 3.0)
    final = {m["MetricName"]: (m["Value"], m["Timestamp"]) for m in parser.final_metric_data_list()}
    assert final["valid:top1"] == (0.5, 3.0)
    assert "broken" not in final
    names = [m["MetricName"] for m in parser.final_metric_data_list()]
    assert names == sorted(names)


def test_metric_parser_drops_nan_inf_and_non_numbers() -> None:
    """NaN, infinities and captures that are not numbers never become metric values."""
    parser = MetricParser([{"Name": "loss", "Regex": r"loss=(\S+)"}, {"Name": "whole", "Regex": "ok"}])
    for line in ("loss=nan", "loss=inf", "loss=-inf", "loss=abc"):
        parser.feed(line, 1.0)
    assert parser.final_metric_data_list() == []
    parser.feed("loss=0.25", 2.0)
    assert parser.final_metric_data_list() == [{"MetricName": "loss", "Value": 0.25, "Timestamp": 2.0}]
