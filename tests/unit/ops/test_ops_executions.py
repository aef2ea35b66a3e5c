"""ops.executions: execution input files, StartExecution, the incremental history reader and ``watch``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from ops.executions import HistoryReader, event_details, load_input, scheduled_resources, start_execution, watch
from ops.target import OpsError
from tests.unit.ops.ops_fakes import OUTPUTS, client, stubbed_target

ARN = "arn:aws:states:us-east-1:123456789012:execution:dogbreed-dev-train-deploy:run-1"
AT = dt.datetime(2025, 4, 9, 12, 0, 0, tzinfo=dt.UTC)


def _event(event_id: int, kind: str = "PassStateExited", **details: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"id": event_id, "timestamp": AT, "type": kind}
    if event_id > 1:
        event["previousEventId"] = event_id - 1
    event.update(details)
    return event


def _newest_first(first: int, last: int) -> list[dict[str, Any]]:
    return [_event(i) for i in range(last, first - 1, -1)]


# ----------------------------------------------------------------------------------------------- load_input
def test_load_input_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    """Missing file, invalid JSON (with the parser's position) and a non-object are OpsErrors naming --input."""
    with pytest.raises(OpsError, match=r"^--input .*missing\.json: no such file$"):
        load_input(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "Training": ')
    with pytest.raises(OpsError, match=r"--input .*bad\.json: not valid JSON \(Expecting value at line 2\)"):
        load_input(bad)
    arr = tmp_path / "arr.json"
    arr.write_text("[1]")
    with pytest.raises(OpsError, match=r"must hold a JSON object .* got list"):
        load_input(arr)


def test_load_input_applies_only_the_given_overrides(tmp_path: Path) -> None:
    """Top-level overrides replace keys; a None override leaves the file's value."""
    path = tmp_path / "input.json"
    path.write_text(json.dumps({"SourceDir": "s3://a/x", "TrainingData": "s3://d/"}))
    assert load_input(path, {"SourceDir": "s3://b/y", "TrainingData": None, "PretrainedWeights": "s3://w/r.pth"}) == {
        "SourceDir": "s3://b/y",
        "TrainingData": "s3://d/",
        "PretrainedWeights": "s3://w/r.pth",
    }


def test_the_shipped_event_fixtures_are_valid_inputs(repo_root: Path) -> None:
    """The execution inputs in tests/events load as JSON objects."""
    for name in ("sfn_local_small.json", "sfn_tuning.json"):
        assert isinstance(load_input(repo_root / "tests" / "events" / name), dict)


# ----------------------------------------------------------------------------------------------- start_execution
def test_start_execution_targets_the_stacks_state_machine() -> None:
    """StartExecution on the StateMachineArn output, with the JSON input; no name means Step Functions picks one."""
    sfn = client("stepfunctions")
    target = stubbed_target({"stepfunctions": sfn})
    with Stubber(sfn) as stub:
        stub.add_response(
            "start_execution",
            {"executionArn": ARN, "startDate": AT},
            {"stateMachineArn": OUTPUTS["StateMachineArn"], "input": '{"a": 1}'},
        )
        stub.add_response(
            "start_execution",
            {"executionArn": ARN, "startDate": AT},
            {"stateMachineArn": OUTPUTS["StateMachineArn"], "input": "{}", "name": "run-1"},
        )
        assert start_execution(target, {"a": 1}) == ARN
        assert start_execution(target, {}, "run-1") == ARN
        stub.assert_no_pending_responses()


# ----------------------------------------------------------------------------------------------- HistoryReader
def _expect_page(stub: Stubber, events: list[dict[str, Any]], token_in: str | None, token_out: str | None) -> None:
    params: dict[str, Any] = {"executionArn": ARN, "reverseOrder": True, "maxResults": 100}
    if token_in:
        params["nextToken"] = token_in
    response: dict[str, Any] = {"events": events}
    if token_out:
        response["nextToken"] = token_out
    stub.add_response("get_execution_history", response, params)


def test_history_reader_reads_only_new_events_one_page_per_poll() -> None:
    """Each poll asks for the newest page first and stops at the first event already seen, so a long execution
    costs one page per poll when few events are new; events come back oldest first, each exactly once."""
    sfn = client("stepfunctions")
    reader = HistoryReader(sfn, ARN)
    with Stubber(sfn) as stub:
        # poll 1: 150 events, two pages
        _expect_page(stub, _newest_first(51, 150), None, "page-2")
        _expect_page(stub, _newest_first(1, 50), "page-2", None)
        # poll 2: 3 new events; the first page (still 100 long, with a token) already reaches seen events
        _expect_page(stub, _newest_first(54, 153), None, "more")
        # poll 3: nothing new
        _expect_page(stub, _newest_first(54, 153), None, "more")
        # poll 4: 120 new events span two pages
        _expect_page(stub, _newest_first(174, 273), None, "p2")
        _expect_page(stub, _newest_first(74, 173), "p2", "p3")

        assert [e["id"] for e in reader.new_events()] == list(range(1, 151))
        assert reader.pages_read == 2
        assert [e["id"] for e in reader.new_events()] == [151, 152, 153]
        assert reader.pages_read == 3  # one page for this poll
        assert reader.new_events() == []
        assert (reader.pages_read, reader.last_id) == (4, 153)
        assert [e["id"] for e in reader.new_events()] == list(range(154, 274))
        assert reader.pages_read == 6
        stub.assert_no_pending_responses()


def test_history_reader_on_a_short_history_reads_it_whole_once() -> None:
    """A history shorter than a page is one call, and a later poll without news returns nothing."""
    sfn = client("stepfunctions")
    reader = HistoryReader(sfn, ARN)
    with Stubber(sfn) as stub:
        _expect_page(stub, _newest_first(1, 3), None, None)
        _expect_page(stub, _newest_first(1, 3), None, None)
        assert [e["id"] for e in reader.new_events()] == [1, 2, 3]
        assert reader.new_events() == []


def test_scheduled_resources_and_event_details() -> None:
    """TaskScheduled events name the SDK action and its parameters; malformed parameters are skipped."""
    events = [
        _event(1, "ExecutionStarted", executionStartedEventDetails={"input": "{}"}),
        _event(
            2,
            "TaskScheduled",
            taskScheduledEventDetails={
                "resource": "arn:aws:states:::aws-sdk:sagemaker:createTrainingJob",
                "resourceType": "aws-sdk",
                "region": "us-east-1",
                "parameters": json.dumps({"TrainingJobName": "job-1"}),
            },
        ),
        _event(3, "TaskScheduled", taskScheduledEventDetails={"resource": "x:describeEndpoint", "parameters": "{"}),
    ]
    assert event_details(events[0]) == {"input": "{}"}
    assert event_details({"id": 1, "type": "X"}) == {}
    assert list(scheduled_resources(events)) == [("createTrainingJob", {"TrainingJobName": "job-1"})]


# ----------------------------------------------------------------------------------------------- watch
def _described(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "executionArn": ARN,
        "stateMachineArn": OUTPUTS["StateMachineArn"],
        "status": status,
        "startDate": AT,
        **extra,
    }


def test_watch_returns_at_a_terminal_status_after_reporting_every_event() -> None:
    """watch polls describe + history until SUCCEEDED, hands each batch of new events over once, then returns."""
    sfn = client("stepfunctions")
    batches: list[list[int]] = []
    polls: list[int] = []
    sleeps: list[float] = []
    with Stubber(sfn) as stub:
        stub.add_response("describe_execution", _described("RUNNING"), {"executionArn": ARN})
        _expect_page(stub, _newest_first(1, 2), None, None)
        stub.add_response("describe_execution", _described("RUNNING"), {"executionArn": ARN})
        _expect_page(stub, _newest_first(1, 2), None, None)
        stub.add_response(
            "describe_execution", _described("SUCCEEDED", output="{}", stopDate=AT), {"executionArn": ARN}
        )
        _expect_page(stub, _newest_first(1, 4), None, None)
        final = watch(
            stubbed_target({"stepfunctions": sfn}),
            ARN,
            lambda ev: batches.append([e["id"] for e in ev]),
            lambda: polls.append(1),
            poll_seconds=2.5,
            sleep=sleeps.append,
        )
        stub.assert_no_pending_responses()
    assert final["status"] == "SUCCEEDED"
    assert batches == [[1, 2], [3, 4]]  # the empty middle poll reports nothing
    assert polls == [1, 1, 1]
    assert sleeps == [2.5, 2.5]


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT", "ABORTED"])
def test_watch_stops_at_every_terminal_status(status: str) -> None:
    """FAILED, TIMED_OUT and ABORTED end the watch as well, without sleeping."""
    sfn = client("stepfunctions")
    with Stubber(sfn) as stub:
        stub.add_response("describe_execution", _described(status, error="States.TaskFailed"), {"executionArn": ARN})
        _expect_page(stub, _newest_first(1, 1), None, None)
        final = watch(
            stubbed_target({"stepfunctions": sfn}),
            ARN,
            lambda ev: None,
            poll_seconds=1,
            sleep=lambda s: pytest.fail("slept after a terminal status"),
        )
    assert (final["status"], final["error"]) == (status, "States.TaskFailed")


def test_watch_gives_up_after_its_timeout() -> None:
    """Still RUNNING past ``timeout``: an OpsError that says where to look next."""
    sfn = client("stepfunctions")
    with Stubber(sfn) as stub:
        stub.add_response("describe_execution", _described("RUNNING"), {"executionArn": ARN})
        _expect_page(stub, _newest_first(1, 1), None, None)
        with pytest.raises(OpsError, match=r"execution still RUNNING after 0s; see `status` and `logs`"):
            watch(
                stubbed_target({"stepfunctions": sfn}),
                ARN,
                lambda ev: None,
                poll_seconds=1,
                timeout=0.0,
                sleep=lambda s: None,
            )
