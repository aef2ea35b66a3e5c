"""The process table and the record file of the runtime's children: what ``processes.ProcessSupervisor`` reads.

``/proc/<pid>/stat`` gives a process's group, session and start time (field 22), which tell our child from a
recycled pid; ``/proc/<pid>/environ`` carries the tag every child and grandchild inherits. The record file
(``StateLayout(home).processes``) is rewritten atomically with mode 0600 so a crashed runtime's successor can find
what it left.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from local_aws.private_file import replace_private

log = logging.getLogger("local_aws.processes")

TAG_ENV = "LOCAL_AWS_PROCESS_TAG"  # inherited by grandchildren: proves a group is ours after its leader died
RECORD_VERSION = 1


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` (proc(5)) the supervisor needs."""

    pid: int
    state: str
    pgid: int
    start_time: int  # field 22, clock ticks after boot: a recycled pid has another one

    @property
    def alive(self) -> bool:
        """False for zombies: they still answer ``kill(pid, 0)`` but run nothing."""
        return self.state not in {"Z", "X", "x"}


class ProcReader(Protocol):
    """The process table (tests inject a fake): ``stat`` (None: no such process), every pid, and one variable of
    the environment a process was exec'd with (None: absent or unreadable)."""

    def stat(self, pid: int) -> ProcStat | None: ...
    def pids(self) -> Iterable[int]: ...
    def environ(self, pid: int, name: str) -> str | None: ...


def parse_stat(pid: int, raw: bytes) -> ProcStat | None:
    """Parse ``/proc/<pid>/stat``; None if malformed."""
    try:
        # Field 2 (comm) is in parentheses and may contain spaces and ')': field 3 starts after the *last* ')'.
        fields = raw[raw.rindex(b")") + 2 :].split()
        return ProcStat(pid, fields[0].decode(), int(fields[2]), int(fields[19]))
    except (ValueError, IndexError):
        return None


@dataclass(frozen=True)
class LinuxProcReader:
    """:class:`ProcReader` over procfs. Without ``/proc`` (not Linux) it sees nothing, so the reaper kills nothing."""

    root: Path = Path("/proc")

    def stat(self, pid: int) -> ProcStat | None:
        try:
            return parse_stat(pid, (self.root / str(pid) / "stat").read_bytes())
        except OSError:
            return None

    def pids(self) -> list[int]:
        with contextlib.suppress(OSError):
            return [int(p.name) for p in self.root.iterdir() if p.name.isdigit()]
        return []

    def environ(self, pid: int, name: str) -> str | None:
        prefix = name.encode() + b"="
        with contextlib.suppress(OSError):
            for entry in (self.root / str(pid) / "environ").read_bytes().split(b"\0"):
                if entry.startswith(prefix):
                    return entry[len(prefix) :].decode(errors="replace")
        return None


@dataclass(frozen=True)
class ProcessRecord:
    """One child as the record file stores it: a JSON object with these field names."""

    pid: int
    pgid: int
    start_time: int | None  # /proc/<pid>/stat field 22; None where unknown, and then the reaper never kills it
    argv: tuple[str, ...]  # argv[0..2], for people reading the file
    owner: str  # e.g. "training-job/<name>", "endpoint/<name>"
    kind: str  # e.g. "training-host", "endpoint-instance", "pip"
    tag: str  # $LOCAL_AWS_PROCESS_TAG in the child's environment
    supervisor_pid: int
    supervisor_start_time: int | None
    supervisor_id: str  # one per ProcessSupervisor instance
    started_at: float  # Unix time

    def to_json(self) -> dict[str, Any]:
        """The JSON object for the record file."""
        return {**dataclasses.asdict(self), "argv": list(self.argv)}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ProcessRecord:
        """Inverse of :meth:`to_json`; KeyError, TypeError or ValueError for a malformed entry."""
        opt = lambda value: None if value is None else int(value)  # noqa: E731
        return cls(
            pid=int(raw["pid"]),
            pgid=int(raw["pgid"]),
            start_time=opt(raw["start_time"]),
            argv=tuple(str(a) for a in raw["argv"]),
            owner=str(raw["owner"]),
            kind=str(raw["kind"]),
            tag=str(raw["tag"]),
            supervisor_pid=int(raw["supervisor_pid"]),
            supervisor_start_time=opt(raw["supervisor_start_time"]),
            supervisor_id=str(raw["supervisor_id"]),
            started_at=float(raw["started_at"]),
        )


@dataclass(frozen=True)
class ReapedProcess:
    """A leftover group that :meth:`ProcessSupervisor.reap_leftovers` killed."""

    record: ProcessRecord
    pids: tuple[int, ...]  # the live members of its group when found
    forced: bool  # SIGTERM was not enough within the grace: SIGKILL was sent


def load_records(path: Path) -> list[ProcessRecord]:
    """The records in ``path``: none if it is absent or unreadable; malformed entries are skipped (logged)."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["processes"]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable process record file %s: %s", path, exc)
        return []
    records = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            records.append(ProcessRecord.from_json(entry))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring malformed process record in %s: %r (%s)", path, entry, exc)
    return records


def write_records(path: Path, records: Iterable[ProcessRecord]) -> None:
    """Atomically replace ``path``, mode 0600: readers see the old file or the new one, never half of one."""
    body = json.dumps({"version": RECORD_VERSION, "processes": [r.to_json() for r in records]}, indent=2) + "\n"
    replace_private(path, body)


def process_running(pid: int, reader: ProcReader | None = None) -> bool:
    """Whether ``pid`` is a live process: it exists and is not a zombie (``kill(pid, 0)`` succeeds for a zombie, whose
    parent has not reaped it yet, although it runs nothing any more). Without ``/proc``, ``kill(pid, 0)`` decides."""
    if pid <= 0:
        return False
    reader = reader or LinuxProcReader()
    if Path("/proc/self").exists():
        stat = reader.stat(pid)
        return stat is not None and stat.alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
