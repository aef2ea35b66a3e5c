"""A training job's hosts: their processes, log pumps and failure reasons, and the in-memory run they belong to."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from local_aws.constants import TRAINING_LOG_GROUP
from local_aws.processes import ProcessSupervisor
from local_aws.sagemaker.failure import script_error
from local_aws.sagemaker.training import toolkit
from local_aws.sagemaker.training.metrics import MetricParser


class LogWriter(Protocol):
    """Appends events to a CloudWatch-style log stream (the local Logs service's store)."""

    def append(self, group: str, stream: str, events: list[tuple[int, str]]) -> None: ...


@dataclass
class Host:
    """One training host: its /opt/ml tree, its process and its log stream."""

    name: str
    layout: toolkit.HostLayout
    proc: subprocess.Popen[bytes]
    stream: str
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=200))
    pump: threading.Thread | None = None


@dataclass
class JobRun:
    """In-memory companion of a persisted job record: processes, stop flags, the metric parser."""

    record: dict[str, Any]
    metrics: MetricParser
    stop_requested: threading.Event = field(default_factory=threading.Event)
    shutdown: bool = False
    hosts: list[Host] = field(default_factory=list)
    thread: threading.Thread | None = None
    attempt_started: float | None = None  # time.time() of this attempt's Downloading (its instances run from here)
    ran_real_s: float = 0.0  # real seconds earlier attempts' instances ran (billable)
    interruptions: int = 0

    def billable_real_s(self, now: float) -> float:
        """Real seconds the job's instances have run, over every attempt (the Interrupted waits left out)."""
        current = now - self.attempt_started if self.attempt_started is not None else 0.0
        return self.ran_real_s + max(0.0, current)

    def kill_all(self, supervisor: ProcessSupervisor) -> None:
        """Kill every host's process group (DataLoader workers and torchrun agents included)."""
        for host in self.hosts:
            supervisor.kill_group(host.proc)


def pump(run: JobRun, host: Host, logs: LogWriter, echo: Callable[[str], None] | None) -> None:
    """Copy a host's output, line by line, to its log stream, the metric parser and the optional echo."""
    stream: IO[bytes] | None = host.proc.stdout
    if stream is None:
        return
    name = run.record["TrainingJobName"]
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        now = time.time()
        logs.append(TRAINING_LOG_GROUP, host.stream, [(int(now * 1000), line)])
        host.tail.append(line)
        run.metrics.feed(line, now)
        if echo is not None:
            echo(f"{name} {host.name} | {line}")


def failure_reason(run: JobRun, first: Host) -> str:
    """FailureReason of a failed job: the first failure file, else what the toolkit reports for a script."""
    for host in [first] + [h for h in run.hosts if h is not first]:
        if host.layout.failure.is_file():
            text = host.layout.failure.read_text(errors="replace").strip()
            if text:
                return f"AlgorithmError: {text}"
    args = first.proc.args
    command = " ".join(str(a) for a in args) if isinstance(args, list) else str(args)
    return "AlgorithmError: " + script_error(first.proc.returncode, list(first.tail), command)


def wait_pumps(run: JobRun) -> None:
    for host in run.hosts:
        if host.pump is not None:
            host.pump.join(timeout=10)
