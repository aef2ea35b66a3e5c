"""local_aws.stepfunctions.executions: execution records that outlive moto, and the recorder that writes them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from local_aws.stepfunctions.executions import INTERRUPTED_ERROR, ExecutionRecorder, ExecutionStore

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:train-deploy"


def _describe(name: str, status: str) -> dict[str, Any]:
    return {
        "executionArn": f"{MACHINE.replace(':stateMachine:', ':execution:')}:{name}",
        "stateMachineArn": MACHINE,
        "name": name,
        "status": status,
        "startDate": 1.0,
    }


def test_store_round_trips_and_lists_records(tmp_path: Path) -> None:
    """put/get keep DescribeExecution and the events; all() lists every record; unknown ARNs are None."""
    store = ExecutionStore(tmp_path)
    describe = _describe("run-1", "SUCCEEDED")
    store.put(describe, [{"id": 1, "type": "ExecutionStarted"}])
    doc = store.get(describe["executionArn"])
    assert doc is not None
    assert doc["describe"] == describe and doc["events"] == [{"id": 1, "type": "ExecutionStarted"}]
    assert doc["pid"] == os.getpid()
    assert [d["describe"]["name"] for d in store.all()] == ["run-1"]
    assert store.get(describe["executionArn"] + "-nope") is None
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left behind


def test_a_corrupt_record_is_skipped(tmp_path: Path) -> None:
    """A half-written file does not break get() or all()."""
    store = ExecutionStore(tmp_path)
    store.put(_describe("good", "SUCCEEDED"), [])
    (tmp_path / "train-deploy__bad.json").write_text("{")
    assert [d["describe"]["name"] for d in store.all()] == ["good"]
    assert store.get(_describe("bad", "RUNNING")["executionArn"]) is None


def test_running_records_of_a_dead_process_are_closed_as_aborted(tmp_path: Path) -> None:
    """At start-up, RUNNING records become ABORTED with an ExecutionAborted event naming the reason."""
    store = ExecutionStore(tmp_path)
    store.put(_describe("done", "SUCCEEDED"), [{"id": 1}])
    running = _describe("cut", "RUNNING")
    store.put(running, [{"id": 1}, {"id": 2}])
    assert store.close_interrupted() == [running["executionArn"]]
    doc = store.get(running["executionArn"])
    assert doc is not None
    assert doc["describe"]["status"] == "ABORTED" and doc["describe"]["error"] == INTERRUPTED_ERROR
    last = doc["events"][-1]
    assert (last["id"], last["previousEventId"], last["type"]) == (3, 2, "ExecutionAborted")
    assert "Start a new execution" in last["executionAbortedEventDetails"]["cause"]
    assert store.close_interrupted() == []  # nothing left to close
    assert store.get(_describe("done", "SUCCEEDED")["executionArn"])["describe"]["status"] == "SUCCEEDED"  # type: ignore[index]


def test_recorder_copies_executions_until_they_end(tmp_path: Path) -> None:
    """record_all() copies every watched execution; a finished one is not asked for again."""
    store = ExecutionStore(tmp_path)
    live = {"run-1": "RUNNING"}
    calls: list[str] = []

    def moto(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        calls.append(operation)
        if operation == "ListExecutions":
            return {"executions": [_describe(name, status) for name, status in live.items()]}
        name = params["executionArn"].rsplit(":", 1)[-1]
        if operation == "DescribeExecution":
            return _describe(name, live[name])
        return {"events": [{"id": 1, "type": "ExecutionStarted"}]}

    recorder = ExecutionRecorder(store, moto)
    recorder.watch(MACHINE)
    recorder.record_all()
    arn = _describe("run-1", "RUNNING")["executionArn"]
    assert store.get(arn)["describe"]["status"] == "RUNNING"  # type: ignore[index]
    live["run-1"] = "SUCCEEDED"
    recorder.record_all()
    assert store.get(arn)["describe"]["status"] == "SUCCEEDED"  # type: ignore[index]
    calls.clear()
    recorder.record_all()
    assert calls == ["ListExecutions"]  # finished: listed, never described again


def test_recorder_survives_a_failing_machine(tmp_path: Path) -> None:
    """A deleted machine (ListExecutions fails) is skipped; stop() still records once more."""

    def moto(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        raise LookupError(params)

    recorder = ExecutionRecorder(ExecutionStore(tmp_path), moto, interval_s=0.01)
    recorder.watch(MACHINE)
    recorder.start()
    recorder.stop()
    assert ExecutionStore(tmp_path).all() == []
