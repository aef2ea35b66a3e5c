"""local_aws.logs.api: CloudWatch Logs on disk, driven by a real boto3 ``logs`` client (botocore parses every answer).

The client's requests reach ``LogsApi`` in-process through werkzeug's test client (tests/unit/local_aws/wsgi_boto3.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from werkzeug.test import Client

from local_aws.logs.api import LogsApi
from local_aws.logs.store import LogStore
from tests.unit.local_aws.wsgi_boto3 import wsgi_client

GROUP = "/aws/sagemaker/TrainingJobs"


@pytest.fixture
def store(tmp_path: Path) -> LogStore:
    return LogStore(tmp_path)


@pytest.fixture
def api(store: LogStore) -> LogsApi:
    return LogsApi(store)


@pytest.fixture
def logs(api: LogsApi) -> Any:
    return wsgi_client("logs", api)


def _error(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def _put(logs: Any, stream: str, events: list[tuple[int, str]], group: str = GROUP) -> None:
    logs.put_log_events(
        logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": t, "message": m} for t, m in events]
    )


@pytest.fixture
def job_logs(logs: Any) -> Any:
    """Two hosts of job-a and one of job-b, interleaved in time."""
    logs.create_log_group(logGroupName=GROUP)
    for stream in ("job-a/algo-1-1", "job-a/algo-2-1", "job-b/algo-1-1"):
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    _put(logs, "job-a/algo-1-1", [(1000, "METRIC split=train epoch=1 loss=1.0"), (3000, "epoch 2 done")])
    _put(logs, "job-a/algo-2-1", [(2000, "METRIC split=train epoch=1 loss=1.0"), (4000, "Traceback boom")])
    _put(logs, "job-b/algo-1-1", [(1500, "other job")])
    return logs


# ----------------------------------------------------------------------------------------------- groups
def test_create_and_describe_groups_with_a_prefix(logs: Any) -> None:
    """Groups are listed by prefix, sorted by name, with CloudWatch's ARN shape."""
    for name in ("/aws/lambda/fn", "/aws/sagemaker/TrainingJobs", "/aws/sagemaker/Endpoints/dogbreed-dev"):
        logs.create_log_group(logGroupName=name)
    groups = logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/")["logGroups"]
    assert [g["logGroupName"] for g in groups] == [
        "/aws/sagemaker/Endpoints/dogbreed-dev",
        "/aws/sagemaker/TrainingJobs",
    ]
    assert groups[1]["arn"] == "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/TrainingJobs:*"
    assert isinstance(groups[0]["creationTime"], int)
    assert len(logs.describe_log_groups()["logGroups"]) == 3


def test_describe_groups_pages_with_limit_and_next_token(logs: Any) -> None:
    """limit and nextToken page through the groups; the last page has no token."""
    for i in range(5):
        logs.create_log_group(logGroupName=f"/g/{i}")
    names: list[str] = []
    kwargs: dict[str, Any] = {"limit": 2}
    pages = 0
    while True:
        page = logs.describe_log_groups(**kwargs)
        names += [g["logGroupName"] for g in page["logGroups"]]
        pages += 1
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert names == [f"/g/{i}" for i in range(5)] and pages == 3


def test_group_errors_use_the_services_codes(logs: Any) -> None:
    """Duplicate group: ResourceAlreadyExistsException; missing group: ResourceNotFoundException."""
    logs.create_log_group(logGroupName=GROUP)
    assert _error(lambda: logs.create_log_group(logGroupName=GROUP))[0] == "ResourceAlreadyExistsException"
    assert _error(lambda: logs.delete_log_group(logGroupName="/nope")) == (
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )
    assert _error(lambda: logs.create_log_stream(logGroupName="/nope", logStreamName="s"))[0] == (
        "ResourceNotFoundException"
    )
    assert _error(lambda: logs.put_retention_policy(logGroupName="/nope", retentionInDays=7))[0] == (
        "ResourceNotFoundException"
    )


def test_retention_is_kept_and_reported(logs: Any) -> None:
    """PutRetentionPolicy is stored and shown by DescribeLogGroups."""
    logs.create_log_group(logGroupName=GROUP)
    logs.put_retention_policy(logGroupName=GROUP, retentionInDays=30)
    assert logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"][0]["retentionInDays"] == 30


def test_delete_group_removes_its_streams(job_logs: Any) -> None:
    """DeleteLogGroup deletes the group and its streams; reading it afterwards is ResourceNotFoundException."""
    job_logs.delete_log_group(logGroupName=GROUP)
    assert job_logs.describe_log_groups()["logGroups"] == []
    assert _error(lambda: job_logs.describe_log_streams(logGroupName=GROUP))[0] == "ResourceNotFoundException"


# ----------------------------------------------------------------------------------------------- streams
def test_streams_by_prefix_with_event_times(job_logs: Any) -> None:
    """DescribeLogStreams by prefix: names, first/last event timestamps, stored bytes."""
    streams = job_logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="job-a/")["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["job-a/algo-1-1", "job-a/algo-2-1"]
    assert (streams[0]["firstEventTimestamp"], streams[0]["lastEventTimestamp"]) == (1000, 3000)
    assert streams[0]["storedBytes"] > 0
    assert streams[0]["arn"].endswith(f"log-group:{GROUP}:log-stream:job-a/algo-1-1")


def test_streams_ordered_by_last_event_time_descending(job_logs: Any) -> None:
    """orderBy LastEventTime + descending puts the most recently written stream first."""
    streams = job_logs.describe_log_streams(logGroupName=GROUP, orderBy="LastEventTime", descending=True)["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["job-a/algo-2-1", "job-a/algo-1-1", "job-b/algo-1-1"]


def test_duplicate_and_missing_streams(job_logs: Any) -> None:
    """Duplicate stream: ResourceAlreadyExistsException; put/get on a missing stream: ResourceNotFoundException."""
    assert _error(lambda: job_logs.create_log_stream(logGroupName=GROUP, logStreamName="job-b/algo-1-1"))[0] == (
        "ResourceAlreadyExistsException"
    )
    assert _error(lambda: _put(job_logs, "missing", [(1, "x")])) == (
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    )
    assert _error(lambda: job_logs.get_log_events(logGroupName=GROUP, logStreamName="missing"))[0] == (
        "ResourceNotFoundException"
    )


# ----------------------------------------------------------------------------------------------- events
def test_put_events_are_stored_in_time_order_one_line_each(logs: Any, store: LogStore) -> None:
    """Events sent out of order are read back sorted; a multi-line message stays one event."""
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
    _put(logs, "s", [(30, "third"), (10, "first\nstill first"), (20, "second")])
    events = logs.get_log_events(logGroupName=GROUP, logStreamName="s", startFromHead=True)["events"]
    assert [(e["timestamp"], e["message"]) for e in events] == [
        (10, "first still first"),
        (20, "second"),
        (30, "third"),
    ]
    assert all(e["ingestionTime"] == e["timestamp"] for e in events)


def test_get_events_from_head_pages_forward_and_the_default_is_the_newest(job_logs: Any) -> None:
    """startFromHead + limit pages forward with nextForwardToken; without it the first page is the newest events."""
    for i in range(5):
        _put(job_logs, "job-b/algo-1-1", [(2000 + i, f"line {i}")])
    first = job_logs.get_log_events(logGroupName=GROUP, logStreamName="job-b/algo-1-1", startFromHead=True, limit=2)
    assert [e["message"] for e in first["events"]] == ["other job", "line 0"]
    second = job_logs.get_log_events(
        logGroupName=GROUP, logStreamName="job-b/algo-1-1", limit=2, nextToken=first["nextForwardToken"]
    )
    assert [e["message"] for e in second["events"]] == ["line 1", "line 2"]
    newest = job_logs.get_log_events(logGroupName=GROUP, logStreamName="job-b/algo-1-1", limit=2)
    assert [e["message"] for e in newest["events"]] == ["line 3", "line 4"]
    assert newest["nextForwardToken"].startswith("f/") and newest["nextBackwardToken"].startswith("b/")


def test_get_events_time_window_start_is_inclusive(job_logs: Any) -> None:
    """GetLogEvents startTime: events at or after it are included."""
    events = job_logs.get_log_events(
        logGroupName=GROUP, logStreamName="job-a/algo-1-1", startTime=3000, startFromHead=True
    )["events"]
    assert [e["timestamp"] for e in events] == [3000]


def test_get_events_end_time_is_exclusive(job_logs: Any) -> None:
    """GetLogEvents endTime: an event exactly at endTime is not included (FilterLogEvents' endTime is inclusive)."""
    events = job_logs.get_log_events(
        logGroupName=GROUP, logStreamName="job-a/algo-1-1", endTime=3000, startFromHead=True
    )["events"]
    assert [e["timestamp"] for e in events] == [1000]


def test_filter_merges_streams_by_prefix_in_time_order(job_logs: Any) -> None:
    """FilterLogEvents over a stream prefix: every host's events, merged by timestamp, with stream names and ids."""
    page = job_logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="job-a/")
    assert [(e["logStreamName"], e["timestamp"]) for e in page["events"]] == [
        ("job-a/algo-1-1", 1000),
        ("job-a/algo-2-1", 2000),
        ("job-a/algo-1-1", 3000),
        ("job-a/algo-2-1", 4000),
    ]
    assert len({e["eventId"] for e in page["events"]}) == 4
    assert {s["logStreamName"] for s in page["searchedLogStreams"]} == {"job-a/algo-1-1", "job-a/algo-2-1"}


def test_filter_by_stream_names_time_window_and_pattern(job_logs: Any) -> None:
    """logStreamNames, an inclusive [startTime, endTime] window, and terms/quoted phrases that must all occur."""
    named = job_logs.filter_log_events(logGroupName=GROUP, logStreamNames=["job-b/algo-1-1"])["events"]
    assert [e["message"] for e in named] == ["other job"]
    window = job_logs.filter_log_events(logGroupName=GROUP, startTime=1500, endTime=3000)["events"]
    assert [e["timestamp"] for e in window] == [1500, 2000, 3000]
    metric = job_logs.filter_log_events(logGroupName=GROUP, filterPattern="METRIC loss=1.0")["events"]
    assert [e["logStreamName"] for e in metric] == ["job-a/algo-1-1", "job-a/algo-2-1"]
    phrase = job_logs.filter_log_events(logGroupName=GROUP, filterPattern='"epoch 2 done"')["events"]
    assert [e["message"] for e in phrase] == ["epoch 2 done"]
    assert job_logs.filter_log_events(logGroupName=GROUP, filterPattern='"done epoch"')["events"] == []


def test_filter_pages_with_limit_and_botocores_paginator(job_logs: Any) -> None:
    """limit + nextToken page the merged events; botocore's paginator walks them all."""
    first = job_logs.filter_log_events(logGroupName=GROUP, limit=2)
    assert len(first["events"]) == 2 and "nextToken" in first
    pages = job_logs.get_paginator("filter_log_events").paginate(logGroupName=GROUP, PaginationConfig={"PageSize": 2})
    assert [e["timestamp"] for page in pages for e in page["events"]] == [1000, 1500, 2000, 3000, 4000]


def test_filter_on_a_missing_group_and_a_bad_token(job_logs: Any) -> None:
    """A missing group is ResourceNotFoundException; a garbled nextToken is InvalidParameterException."""
    assert _error(lambda: job_logs.filter_log_events(logGroupName="/nope"))[0] == "ResourceNotFoundException"
    assert _error(lambda: job_logs.filter_log_events(logGroupName=GROUP, nextToken="%%%"))[0] == (
        "InvalidParameterException"
    )


def test_lines_written_by_the_runtime_are_served(store: LogStore, logs: Any) -> None:
    """What a training host appends to the store (no API call) is what FilterLogEvents returns."""
    store.append(GROUP, "job-c/algo-1-1", [(5, "written in-process")])
    events = logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="job-c/")["events"]
    assert [e["message"] for e in events] == ["written in-process"]


def test_unknown_operations_and_bad_bodies(api: LogsApi) -> None:
    """An operation not emulated is UnknownOperationException; a body that is not a JSON object is refused."""
    web = Client(api)
    unknown = web.post("/", data="{}", headers={"X-Amz-Target": "Logs_20140328.StartQuery"})
    assert unknown.status_code == 400
    assert json.loads(unknown.get_data())["__type"] == "UnknownOperationException"
    assert unknown.headers["x-amzn-ErrorType"] == "UnknownOperationException"
    for body in ("{", "[]"):
        bad = web.post("/", data=body, headers={"X-Amz-Target": "Logs_20140328.DescribeLogGroups"})
        assert json.loads(bad.get_data())["__type"] == "SerializationException"
    missing = web.post("/", data="{}", headers={"X-Amz-Target": "Logs_20140328.CreateLogGroup"})
    assert json.loads(missing.get_data()) == {
        "__type": "InvalidParameterException",
        "message": "Missing required parameter logGroupName.",
    }
