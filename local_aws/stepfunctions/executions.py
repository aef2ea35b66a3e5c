"""Execution records that outlive moto: what ``DescribeExecution`` and ``GetExecutionHistory`` said, on disk.

moto keeps executions in memory only (local-aws-building-blocks.md §1.5). A watcher copies each execution's
DescribeExecution answer and full history (as the JSON the wire carries) to ``<home>/executions/<id>.json`` every
second while it runs and once when it ends, so ``aws stepfunctions describe-execution`` and ``list-executions`` still
answer after a restart. An execution that was still RUNNING when its process died can never finish: on the next start
it is closed as ABORTED, with an ``ExecutionAborted`` event naming the reason.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger("local_aws.stepfunctions")
INTERRUPTED_ERROR = "LocalRuntime.Stopped"
INTERRUPTED_CAUSE = (
    "The local runtime stopped (pid {pid}) before this execution finished; an execution cannot survive its "
    "process. Start a new execution."
)
# (target, body) -> decoded JSON answer of moto's Step Functions backend
MotoCall = Callable[[str, dict[str, Any]], dict[str, Any]]


class ExecutionStore:
    """One JSON file per execution: ``{"describe": <DescribeExecution>, "events": [<history events>], "pid": n}``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _path(self, arn: str) -> Path:
        # arn:aws:states:<region>:<account>:execution:<machine>:<name>; names are [A-Za-z0-9_-]{1,80} (validated
        # by moto/botocore), so machine + name make a safe, unique file name.
        machine, _, name = arn.split(":execution:", 1)[-1].partition(":")
        return self.root / f"{machine}__{name}.json"

    def put(self, describe: dict[str, Any], events: list[dict[str, Any]]) -> None:
        arn = describe["executionArn"]
        doc = {"describe": describe, "events": events, "pid": os.getpid(), "recordedAt": time.time()}
        with self._lock:
            path = self._path(arn)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(json.dumps(doc, default=str), encoding="utf-8")
            tmp.replace(path)

    def get(self, arn: str) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] = json.loads(self._path(arn).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return doc

    def all(self) -> list[dict[str, Any]]:
        docs = []
        for path in sorted(self.root.glob("*.json")):
            try:
                docs.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError):
                continue
        return docs

    def close_interrupted(self) -> list[str]:
        """Mark every RUNNING record left by a dead process ABORTED; returns their ARNs (called at start-up)."""
        closed = []
        for doc in self.all():
            describe = doc["describe"]
            if describe.get("status") != "RUNNING":
                continue
            now = time.time()
            cause = INTERRUPTED_CAUSE.format(pid=doc.get("pid", "?"))
            describe.update(status="ABORTED", stopDate=now, error=INTERRUPTED_ERROR, cause=cause)
            events = doc.get("events") or []
            last = events[-1]["id"] if events else 0
            events.append(
                {
                    "id": last + 1,
                    "previousEventId": last,
                    "timestamp": now,
                    "type": "ExecutionAborted",
                    "executionAbortedEventDetails": {"error": INTERRUPTED_ERROR, "cause": cause},
                }
            )
            self.put(describe, events)
            closed.append(describe["executionArn"])
        return closed


class ExecutionRecorder:
    """Copies live executions from moto to the store once a second, and once more when each one ends."""

    def __init__(
        self,
        store: ExecutionStore,
        moto: MotoCall,
        interval_s: float = 1.0,
        on_end: Callable[[dict[str, Any]], object] | None = None,
    ) -> None:
        """``on_end`` gets each execution's DescribeExecution answer once, when it is first seen ended (Step
        Functions' status-change event to EventBridge; local_aws/events)."""
        self.store = store
        self.moto = moto
        self.interval_s = interval_s
        self.on_end = on_end
        self._machines: set[str] = set()
        self._done: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sfn-recorder", daemon=True)

    def watch(self, state_machine_arn: str) -> None:
        """Record the executions of this state machine."""
        self._machines.add(state_machine_arn)

    def start(self) -> ExecutionRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.record_all()

    def record(self, arn: str) -> dict[str, Any]:
        """Copy one execution now; returns its DescribeExecution answer."""
        describe = self.moto("DescribeExecution", {"executionArn": arn})
        events: list[dict[str, Any]] = self.moto("GetExecutionHistory", {"executionArn": arn}).get("events", [])
        self.store.put(describe, events)
        return describe

    def record_all(self) -> None:
        for machine in list(self._machines):
            try:
                listing = self.moto("ListExecutions", {"stateMachineArn": machine, "maxResults": 1000})
            except Exception:  # the machine was deleted, or moto is going away
                LOGGER.debug("cannot list executions of %s", machine, exc_info=True)
                continue
            for item in listing.get("executions", []):
                arn = item["executionArn"]
                if arn in self._done:
                    continue
                try:
                    describe = self.record(arn)
                except Exception:  # keep recording the others
                    LOGGER.warning("could not record execution %s", arn, exc_info=True)
                    continue
                if describe.get("status") != "RUNNING":
                    self._done.add(arn)
                    if self.on_end is not None:
                        try:
                            self.on_end(describe)
                        except Exception:  # a failed notification must not stop the recording
                            LOGGER.warning("could not deliver the end of execution %s", arn, exc_info=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.record_all()
