"""Which recorded process groups are still alive, and which of a dead runtime's groups are provably ours to kill.

The supervisor (``processes.py``) keeps the records; this reads the process table against them. The rule it
applies: a pid number is not handed out again while a process still uses it as its pid, process-group id or
session id, so while our child or any member of its group lives, its group id is ours; beyond that, start times
from ``/proc/<pid>/stat`` and the tag in each child's environment decide. A recycled pid is never reported.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from local_aws.proctable import TAG_ENV, ProcessRecord, ProcReader, ProcStat

POLL_S = 0.05

Found = tuple[ProcessRecord, list[ProcStat]]  # a leftover record, the live members of its group


class GroupProbe:
    """Reads the process table (``/proc``, or a fake in tests) for the groups of recorded children."""

    def __init__(self, reader: ProcReader) -> None:
        self._reader = reader

    def stats(self) -> list[ProcStat]:
        """Every live process (zombies excluded)."""
        return [s for pid in self._reader.pids() if (s := self._reader.stat(pid)) is not None and s.alive]

    def live_pgids(self) -> set[int]:
        return {s.pgid for s in self.stats()}

    def group_members(self, record: ProcessRecord) -> list[ProcStat]:
        """The live members of the record's group that started no earlier than its leader."""
        return [s for s in self.stats() if s.pgid == record.pgid and s.start_time >= (record.start_time or 0)]

    def tagged(self, record: ProcessRecord) -> list[ProcStat]:
        """The live members of the record's group that carry its tag, i.e. descend from our child."""
        members = self.group_members(record) if record.tag else []  # untracked (no tag): no scan of /proc
        return [s for s in members if self._reader.environ(s.pid, TAG_ENV) == record.tag]

    def leftover_members(self, record: ProcessRecord) -> list[ProcStat]:
        """The live members of a leftover's group, if that group is provably the one our child created; else none."""
        if record.start_time is None:
            return []  # nothing to tell a recycled pid by: never kill
        leader = self._reader.stat(record.pid)
        if leader is not None and leader.start_time == record.start_time:
            # Our child itself, running or a zombie: its pid pins the group id, so the group is ours.
            return self.group_members(record)
        if leader is not None and leader.alive:
            return []  # a recycled pid: the kernel reused it only after our group was gone
        return self.tagged(record)  # the child died; grandchildren (no PDEATHSIG after fork) may live on

    def supervisor_alive(self, record: ProcessRecord) -> bool:
        """Whether the runtime that recorded this child still runs (same pid *and* start time)."""
        stat = self._reader.stat(record.supervisor_pid)
        if stat is None or not stat.alive or record.supervisor_start_time is None:
            return False
        return stat.start_time == record.supervisor_start_time

    def wait_gone(self, found: list[Found], timeout_s: float) -> list[Found]:
        """Wait up to ``timeout_s`` for the groups to end; returns those still alive.

        A group counts as alive while it holds a process found at first (same pid *and* start time): that process
        keeps the group id from being recycled, so signalling the group still reaches only ours.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            alive = {(s.pid, s.start_time, s.pgid) for s in self.stats()}
            pending = [(r, m) for r, m in found if any((s.pid, s.start_time, r.pgid) in alive for s in m)]
            if not pending or time.monotonic() >= deadline:
                return pending
            time.sleep(POLL_S)


def signal_groups(found: list[Found], sig: int, killpg: Callable[[int, int], None]) -> None:
    """Send ``sig`` to each found group; one that ended meanwhile is skipped."""
    for record, _ in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            killpg(record.pgid, sig)
