"""local_aws.stepfunctions.api: what the overlay adds in front of moto (UUID names, paging, answers from records).

A real boto3 ``stepfunctions`` client talks to ``StepFunctionsApi`` in-process; moto is replaced by a fake WSGI app
(which records what reaches it) and a fake in-process call (which knows the "live" executions), so every answer is
parsed by botocore exactly as a user's client would parse it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from werkzeug.test import Client

from local_aws.stepfunctions.api import StepFunctionsApi
from local_aws.stepfunctions.executions import ExecutionStore
from tests.unit.local_aws.wsgi_boto3 import wsgi_client

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:train-deploy"
OTHER_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:other"
StartResponse = Callable[..., Any]


def _arn(name: str, machine: str = MACHINE) -> str:
    return machine.replace(":stateMachine:", ":execution:") + f":{name}"


def _describe(name: str, status: str, start: float, machine: str = MACHINE) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "executionArn": _arn(name, machine),
        "stateMachineArn": machine,
        "name": name,
        "status": status,
        "startDate": start,
        "input": '{"a": 1}',
    }
    if status != "RUNNING":
        doc["stopDate"] = start + 5
    return doc


def _events(count: int) -> list[dict[str, Any]]:
    events = [
        {
            "id": 1,
            "timestamp": 1.0,
            "type": "ExecutionStarted",
            "executionStartedEventDetails": {"input": '{"a": 1}', "roleArn": "arn:aws:iam::123456789012:role/r"},
        }
    ]
    for i in range(2, count + 1):
        events.append(
            {
                "id": i,
                "previousEventId": i - 1,
                "timestamp": float(i),
                "type": "PassStateExited",
                "stateExitedEventDetails": {"name": f"S{i}", "output": "{}"},
            }
        )
    return events


class FakeMoto:
    """moto's WSGI app (records what reaches it) and its in-process call (knows the live executions)."""

    def __init__(self) -> None:
        self.live: dict[str, dict[str, Any]] = {}  # arn -> {"describe": ..., "events": [...]}
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.calls: list[str] = []  # the operations asked in-process

    def app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        operation = environ["HTTP_X_AMZ_TARGET"].split(".", 1)[1]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        params = json.loads(environ["wsgi.input"].read(length) or b"{}")
        self.received.append((operation, params))
        status, doc = "200 OK", {}
        if operation == "StartExecution":
            doc = {
                "executionArn": params["stateMachineArn"].replace(":stateMachine:", ":execution:")
                + ":"
                + params["name"],
                "startDate": 1.0,
            }
        elif operation == "DescribeExecution" and params["executionArn"] in self.live:
            doc = self.live[params["executionArn"]]["describe"]
        elif operation in ("DescribeExecution", "GetExecutionHistory"):
            status = "400 Bad Request"
            doc = {"__type": "com.amazonaws.swf.service.v2.model#ExecutionDoesNotExist", "message": "moto: no such"}
        elif operation == "ListStateMachines":
            doc = {"stateMachines": []}
        body = json.dumps(doc).encode()
        start_response(status, [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))])
        return [body]

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(operation)
        if operation == "ListExecutions":
            if params["stateMachineArn"] != MACHINE:
                raise LookupError(params["stateMachineArn"])
            keys = ("executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate")
            return {
                "executions": [{k: v["describe"][k] for k in keys if k in v["describe"]} for v in self.live.values()]
            }
        known = self.live.get(params["executionArn"])
        if known is None:
            raise LookupError(params["executionArn"])
        return dict(known["describe"]) if operation == "DescribeExecution" else {"events": list(known["events"])}


@pytest.fixture
def moto() -> FakeMoto:
    return FakeMoto()


@pytest.fixture
def store(tmp_path: Path) -> ExecutionStore:
    return ExecutionStore(tmp_path / "executions")


@pytest.fixture
def api(moto: FakeMoto, store: ExecutionStore) -> StepFunctionsApi:
    return StepFunctionsApi(moto.app, moto.call, store)


@pytest.fixture
def sfn(api: StepFunctionsApi) -> Any:
    return wsgi_client("stepfunctions", api)


def _code(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


# ----------------------------------------------------------------------------------------------- StartExecution
def test_start_without_a_name_gets_a_uuid_name(sfn: Any, moto: FakeMoto) -> None:
    """No ``name``: the overlay fills in a UUID before moto sees the request, as Step Functions does."""
    arn = sfn.start_execution(stateMachineArn=MACHINE, input="{}")["executionArn"]
    operation, params = moto.received[-1]
    assert operation == "StartExecution"
    assert str(uuid.UUID(params["name"])) == params["name"]
    assert arn == _arn(params["name"])
    assert params["input"] == "{}"
    sfn.start_execution(stateMachineArn=MACHINE)
    assert moto.received[-1][1]["name"] != params["name"]  # a fresh UUID every time


def test_start_with_a_name_keeps_it(sfn: Any, moto: FakeMoto) -> None:
    """An explicit name reaches moto unchanged."""
    assert sfn.start_execution(stateMachineArn=MACHINE, name="run-1")["executionArn"] == _arn("run-1")
    assert moto.received[-1][1]["name"] == "run-1"


def test_a_name_only_the_records_know_is_execution_already_exists(
    sfn: Any, moto: FakeMoto, store: ExecutionStore
) -> None:
    """A recorded execution (from before a restart) blocks its name: ExecutionAlreadyExists, moto never asked."""
    store.put(_describe("run-1", "SUCCEEDED", 100.0), _events(3))
    code, message = _code(lambda: sfn.start_execution(stateMachineArn=MACHINE, name="run-1"))
    assert code == "ExecutionAlreadyExists"
    assert _arn("run-1") in message
    assert moto.received == []
    # the same name on another state machine is another execution
    sfn.start_execution(stateMachineArn=OTHER_MACHINE, name="run-1")
    assert moto.received[-1][0] == "StartExecution"


def test_a_name_moto_still_knows_is_left_to_moto(sfn: Any, moto: FakeMoto, store: ExecutionStore) -> None:
    """A recorded execution that moto still holds: moto answers (idempotent start or its own error)."""
    store.put(_describe("run-1", "RUNNING", 100.0), _events(2))
    moto.live[_arn("run-1")] = {"describe": _describe("run-1", "RUNNING", 100.0), "events": _events(2)}
    sfn.start_execution(stateMachineArn=MACHINE, name="run-1")
    assert moto.received[-1] == ("StartExecution", {"stateMachineArn": MACHINE, "name": "run-1"})


# ----------------------------------------------------------------------------------------------- GetExecutionHistory
def test_history_pages_with_max_results_and_next_token(sfn: Any, store: ExecutionStore) -> None:
    """maxResults pages through the events oldest first; the last page has no nextToken."""
    store.put(_describe("run-1", "SUCCEEDED", 100.0), _events(5))
    pages, kwargs = [], {"executionArn": _arn("run-1"), "maxResults": 2}
    while True:
        page = sfn.get_execution_history(**kwargs)
        pages.append([e["id"] for e in page["events"]])
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert pages == [[1, 2], [3, 4], [5]]


def test_history_in_reverse_order_pages_from_the_newest(sfn: Any, store: ExecutionStore) -> None:
    """reverseOrder: newest first, paged the same way."""
    store.put(_describe("run-1", "SUCCEEDED", 100.0), _events(5))
    first = sfn.get_execution_history(executionArn=_arn("run-1"), maxResults=2, reverseOrder=True)
    assert [e["id"] for e in first["events"]] == [5, 4]
    second = sfn.get_execution_history(
        executionArn=_arn("run-1"), maxResults=2, reverseOrder=True, nextToken=first["nextToken"]
    )
    assert [e["id"] for e in second["events"]] == [3, 2]


def test_history_default_page_is_100_and_timestamps_parse(sfn: Any, store: ExecutionStore) -> None:
    """Without maxResults a page holds 100 events; botocore parses the epoch timestamps as datetimes."""
    store.put(_describe("run-1", "SUCCEEDED", 100.0), _events(150))
    page = sfn.get_execution_history(executionArn=_arn("run-1"))
    assert len(page["events"]) == 100 and "nextToken" in page
    assert page["events"][0]["timestamp"] == datetime.fromtimestamp(1.0, UTC)


def test_history_of_a_live_execution_comes_from_moto_and_is_paged(sfn: Any, moto: FakeMoto) -> None:
    """moto answers the whole history; the overlay pages it."""
    moto.live[_arn("live")] = {"describe": _describe("live", "RUNNING", 50.0), "events": _events(3)}
    page = sfn.get_execution_history(executionArn=_arn("live"), maxResults=1, reverseOrder=True)
    assert [e["id"] for e in page["events"]] == [3] and "nextToken" in page
    assert moto.received == []  # served by the overlay, not passed through


def test_history_without_execution_data_drops_inputs_and_outputs(sfn: Any, store: ExecutionStore) -> None:
    """includeExecutionData=false removes input/output from every event's details, keeping the rest."""
    store.put(_describe("run-1", "SUCCEEDED", 100.0), _events(2))
    events = sfn.get_execution_history(executionArn=_arn("run-1"), includeExecutionData=False)["events"]
    assert events[0]["executionStartedEventDetails"] == {"roleArn": "arn:aws:iam::123456789012:role/r"}
    assert events[1]["stateExitedEventDetails"] == {"name": "S2"}


def test_invalid_next_token_is_invalid_token(sfn: Any, store: ExecutionStore) -> None:
    """A nextToken the service never issued is InvalidToken."""
    store.put(_describe("run-1", "SUCCEEDED", 100.0), _events(2))
    code, message = _code(lambda: sfn.get_execution_history(executionArn=_arn("run-1"), nextToken="bogus"))
    assert code == "InvalidToken" and "bogus" in message


def test_max_results_over_1000_is_a_validation_exception(api: StepFunctionsApi, store: ExecutionStore) -> None:
    """maxResults above 1000 is refused with the service's validation message (sent raw: botocore may refuse too)."""
    store.put(_describe("run-1", "SUCCEEDED", 100.0), _events(2))
    response = Client(api).post(
        "/",
        data=json.dumps({"executionArn": _arn("run-1"), "maxResults": 1001}),
        headers={"X-Amz-Target": "AWSStepFunctions.GetExecutionHistory", "Content-Type": "application/x-amz-json-1.0"},
    )
    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "ValidationException"
    assert "Member must have value less than or equal to 1000" in json.loads(response.get_data())["message"]


def test_history_of_an_unknown_execution_is_left_to_moto(sfn: Any, moto: FakeMoto) -> None:
    """Neither moto nor the records know it: moto's own ExecutionDoesNotExist answer."""
    assert _code(lambda: sfn.get_execution_history(executionArn=_arn("nope")))[0] == "ExecutionDoesNotExist"
    assert moto.received[-1][0] == "GetExecutionHistory"


# ----------------------------------------------------------------------------------------------- Describe / List
def test_describe_answers_from_the_records_when_moto_forgot(sfn: Any, moto: FakeMoto, store: ExecutionStore) -> None:
    """An execution only the records know is described from them; a live one by moto."""
    store.put(_describe("old", "ABORTED", 10.0), _events(2))
    described = sfn.describe_execution(executionArn=_arn("old"))
    assert (described["status"], described["name"]) == ("ABORTED", "old")
    assert described["startDate"] == datetime.fromtimestamp(10.0, UTC)
    assert moto.received == []
    moto.live[_arn("live")] = {"describe": _describe("live", "RUNNING", 20.0), "events": _events(1)}
    asked = len(moto.calls)
    assert sfn.describe_execution(executionArn=_arn("live"))["status"] == "RUNNING"
    # One in-process DescribeExecution answers it; nothing more reaches moto's app.
    assert moto.calls[asked:] == ["DescribeExecution"] and moto.received == []
    assert _code(lambda: sfn.describe_execution(executionArn=_arn("nope")))[0] == "ExecutionDoesNotExist"


def test_list_merges_records_and_live_newest_first(sfn: Any, moto: FakeMoto, store: ExecutionStore) -> None:
    """Records and moto's executions of the machine, live state winning, newest first; other machines excluded."""
    store.put(_describe("old", "SUCCEEDED", 10.0), _events(2))
    store.put(_describe("stale", "RUNNING", 30.0), _events(1))  # moto has it now with a newer status
    store.put(_describe("elsewhere", "SUCCEEDED", 40.0, OTHER_MACHINE), _events(2))
    moto.live[_arn("stale")] = {"describe": _describe("stale", "SUCCEEDED", 30.0), "events": _events(3)}
    moto.live[_arn("new")] = {"describe": _describe("new", "RUNNING", 50.0), "events": _events(1)}
    listed = sfn.list_executions(stateMachineArn=MACHINE)["executions"]
    assert [(e["name"], e["status"]) for e in listed] == [
        ("new", "RUNNING"),
        ("stale", "SUCCEEDED"),
        ("old", "SUCCEEDED"),
    ]
    assert "input" not in listed[0]
    assert [
        e["name"] for e in sfn.list_executions(stateMachineArn=MACHINE, statusFilter="SUCCEEDED")["executions"]
    ] == [
        "stale",
        "old",
    ]


def test_list_pages_with_max_results(sfn: Any, store: ExecutionStore, moto: FakeMoto) -> None:
    """ListExecutions pages with maxResults and nextToken."""
    for i in range(3):
        store.put(_describe(f"run-{i}", "SUCCEEDED", float(i)), _events(1))
    first = sfn.list_executions(stateMachineArn=MACHINE, maxResults=2)
    second = sfn.list_executions(stateMachineArn=MACHINE, maxResults=2, nextToken=first["nextToken"])
    assert [e["name"] for e in first["executions"]] == ["run-2", "run-1"]
    assert [e["name"] for e in second["executions"]] == ["run-0"] and "nextToken" not in second


def test_other_operations_and_unknown_machines_go_to_moto(sfn: Any, moto: FakeMoto) -> None:
    """Operations the overlay does not own, and machines moto does not know, are moto's to answer."""
    assert sfn.list_state_machines()["stateMachines"] == []
    assert moto.received[-1][0] == "ListStateMachines"
    sfn.list_executions(stateMachineArn=OTHER_MACHINE)
    assert moto.received[-1] == ("ListExecutions", {"stateMachineArn": OTHER_MACHINE})


def test_a_body_that_is_not_a_json_object_is_a_serialization_exception(api: StepFunctionsApi) -> None:
    """A body that is not a JSON object is refused before any handler runs."""
    for body in ("{not json", "[1]"):
        response = Client(api).post("/", data=body, headers={"X-Amz-Target": "AWSStepFunctions.DescribeExecution"})
        assert response.status_code == 400
        assert json.loads(response.get_data())["__type"] == "SerializationException"
