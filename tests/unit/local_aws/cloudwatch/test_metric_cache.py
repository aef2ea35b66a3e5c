"""The evaluator's view of moto's metric data: exact dimensions, incremental, started over after a reset."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from moto.cloudwatch.models import CloudWatchBackend

from local_aws.cloudwatch.alarms import MetricCache, metric_key
from local_aws.constants import ACCOUNT_ID, REGION

DIMS = [{"Name": "EndpointName", "Value": "e"}, {"Name": "VariantName", "Value": "AllTraffic"}]


KEY = metric_key("AWS/SageMaker", "Invocations", [(d["Name"], d["Value"]) for d in DIMS])


def put(cw: CloudWatchBackend, value: float, dims: list[dict[str, str]] = DIMS) -> None:
    stamp = datetime.now(UTC)
    cw.put_metric_data(
        "AWS/SageMaker", [{"MetricName": "Invocations", "Value": value, "Dimensions": dims, "Timestamp": stamp}]
    )


def test_exact_dimensions_only_and_new_data_is_picked_up() -> None:
    cw = CloudWatchBackend(REGION, ACCOUNT_ID)
    cache = MetricCache()
    put(cw, 1.0)
    put(cw, 99.0, DIMS[:1])  # the endpoint-level metric: a different metric in CloudWatch
    put(cw, 98.0, [*DIMS, {"Name": "Extra", "Value": "x"}])
    since = time.time() - 60
    assert [s.value for s in cache.samples(cw, {KEY}, since)[KEY]] == [1.0]
    put(cw, 2.0)
    assert [s.value for s in cache.samples(cw, {KEY}, since)[KEY]] == [1.0, 2.0]
    assert cache.samples(cw, {KEY}, time.time() + 1)[KEY] == []


def test_a_reset_backend_starts_the_cache_over() -> None:
    cw = CloudWatchBackend(REGION, ACCOUNT_ID)
    cache = MetricCache()
    put(cw, 1.0)
    put(cw, 2.0)
    assert len(cache.samples(cw, {KEY}, 0.0)[KEY]) == 2
    cw.metric_data = []
    put(cw, 3.0)
    assert [s.value for s in cache.samples(cw, {KEY}, 0.0)[KEY]] == [3.0]
