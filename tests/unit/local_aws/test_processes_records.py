"""ProcessSupervisor's record file and its start-up reaper; the reaper runs against a fake process table.

The fake table makes the start-time checks deterministic: a recycled pid (same number, other start time) must never
be signalled, however its process group looks.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from local_aws import pdeathsig
from local_aws.processes import ProcessSupervisor
from local_aws.proctable import TAG_ENV, LinuxProcReader, ProcessRecord, ProcStat, load_records, parse_stat

DEAD_SUPERVISOR = 4_000_001  # above any pid_max: never a live process


def _start_time(pid: int) -> int:
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    return int(raw[raw.rindex(b")") + 2 :].split()[19])  # field 22, counted independently of the code under test


@pytest.fixture
def record_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "processes.json"


@pytest.fixture
def supervisor(record_path: Path) -> Iterator[ProcessSupervisor]:
    sup = ProcessSupervisor(record_path)
    try:
        yield sup
    finally:
        sup.close(grace_s=1.0)


# ------------------------------------------------------------------------------------------------------- file format
def test_record_file_format_and_mode(supervisor: ProcessSupervisor, record_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(30)", "extra-arg"]
    proc = supervisor.spawn(argv, cwd=None, env=None, owner="training-job/j1", kind="training-host")
    try:
        assert stat.S_IMODE(record_path.stat().st_mode) == 0o600
        data = json.loads(record_path.read_text())
        assert data["version"] == 1
        [entry] = data["processes"]
        assert set(entry) == {
            "pid", "pgid", "start_time", "argv", "owner", "kind", "tag",
            "supervisor_pid", "supervisor_start_time", "supervisor_id", "started_at",
        }  # fmt: skip
        assert entry["pid"] == proc.pid
        assert entry["pgid"] == proc.pid == os.getpgid(proc.pid)  # own group (and session)
        assert os.getsid(proc.pid) == proc.pid
        assert entry["start_time"] == _start_time(proc.pid)
        assert entry["argv"] == argv[:3]
        assert (entry["owner"], entry["kind"]) == ("training-job/j1", "training-host")
        assert entry["supervisor_pid"] == os.getpid()
        assert entry["supervisor_start_time"] == _start_time(os.getpid())
        assert LinuxProcReader().environ(proc.pid, TAG_ENV) == entry["tag"]
        assert proc.args == argv  # not the wrapper's command line
        names = sorted(p.name for p in record_path.parent.iterdir())
        assert names == ["processes.json", "processes.json.lock"]  # no temp file left behind
    finally:
        assert supervisor.stop(proc, grace_s=2.0) == -signal.SIGTERM
    assert json.loads(record_path.read_text())["processes"] == []  # removed once reaped


def test_records_of_other_supervisors_are_kept(supervisor: ProcessSupervisor, record_path: Path) -> None:
    other = _record(pid=12345, tag="other", supervisor_id="someone-else")
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps({"version": 1, "processes": [other.to_json()]}))
    proc = supervisor.spawn(["sleep", "30"], cwd=None, env=None, owner="endpoint/e", kind="endpoint-instance")
    assert {r.tag for r in load_records(record_path)} == {"other", supervisor.children()[0].tag}
    supervisor.stop(proc, grace_s=1.0)
    assert load_records(record_path) == [other]


def test_concurrent_spawns_are_all_recorded(supervisor: ProcessSupervisor, record_path: Path) -> None:
    procs: list[subprocess.Popen[bytes]] = []
    lock = threading.Lock()

    def start(i: int) -> None:
        p = supervisor.spawn(["sleep", "30"], cwd=None, env=None, owner=f"endpoint/e{i}", kind="endpoint-instance")
        with lock:
            procs.append(p)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.pid for r in load_records(record_path)) == sorted(p.pid for p in procs)
    stopped = supervisor.stop_all(grace_s=2.0)
    assert len(stopped) == 6
    assert all(p.returncode == -signal.SIGTERM for p in procs)
    assert load_records(record_path) == []
    with pytest.raises(RuntimeError, match="shutting down"):
        supervisor.spawn(["true"], cwd=None, env=None, owner="x", kind="y")


def test_stop_many_shares_one_grace_period_and_spares_the_others(
    supervisor: ProcessSupervisor, record_path: Path
) -> None:
    """stop_many: SIGTERM to each, one grace period for all, SIGKILL for a child that ignores SIGTERM; no other."""
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(30)",
    ]
    procs = [supervisor.spawn(["sleep", "30"], cwd=None, env=None, owner=f"endpoint/e{i}", kind="k") for i in range(2)]
    procs.append(supervisor.spawn(stubborn, cwd=None, env=None, owner="endpoint/e2", kind="k"))
    bystander = supervisor.spawn(["sleep", "30"], cwd=None, env=None, owner="endpoint/other", kind="k")
    time.sleep(0.3)  # the stubborn child has installed its handler
    started = time.monotonic()
    codes = supervisor.stop_many(procs, grace_s=1.0)
    assert time.monotonic() - started < 1.0 + 2.5  # one grace period, not one per child
    assert codes == [-signal.SIGTERM, -signal.SIGTERM, -signal.SIGKILL]
    assert [r.pid for r in load_records(record_path)] == [bystander.pid]
    assert bystander.poll() is None
    assert supervisor.stop_many([], grace_s=1.0) == []


def test_record_dropped_when_child_exits_and_its_group_is_empty(
    supervisor: ProcessSupervisor, record_path: Path
) -> None:
    proc = supervisor.spawn(["true"], cwd=None, env=None, owner="pip", kind="pip")
    assert proc.wait(timeout=5) == 0
    deadline = time.monotonic() + 5
    while load_records(record_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert load_records(record_path) == []
    assert supervisor.children() == []


def test_spawn_errors_propagate_to_the_caller(supervisor: ProcessSupervisor, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        supervisor.spawn(["/nonexistent/program"], cwd=None, env=None, owner="o", kind="k")
    with pytest.raises(FileNotFoundError):
        supervisor.spawn(["true"], cwd=tmp_path / "missing", env=None, owner="o", kind="k")
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(PermissionError):
        supervisor.spawn([str(script)], cwd=None, env=None, owner="o", kind="k")
    assert supervisor.children() == []


def test_signal_handler_stops_children_then_chains(record_path: Path) -> None:
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    # Python's own SIGINT handler as the one to chain to: a shell starts background jobs with SIGINT ignored, and
    # Python then installs none (a `cmd &` run of the suite saw SIG_IGN here and no KeyboardInterrupt).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sup = ProcessSupervisor(record_path)
    try:
        proc = sup.spawn(["sleep", "30"], cwd=None, env=None, owner="o", kind="k")
        sup.install_signal_handlers(grace_s=1.0)
        with pytest.raises(KeyboardInterrupt):  # the previous SIGINT handler still runs, after stop_all
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        assert proc.returncode == -signal.SIGTERM
        assert load_records(record_path) == []
        with pytest.raises(RuntimeError, match="shutting down"):
            sup.spawn(["true"], cwd=None, env=None, owner="o", kind="k")
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        sup.close(grace_s=1.0)  # also unregisters the atexit hook


def test_signal_handlers_need_the_main_thread(supervisor: ProcessSupervisor) -> None:
    errors: list[BaseException] = []

    def install() -> None:
        try:
            supervisor.install_signal_handlers()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=install)
    thread.start()
    thread.join()
    assert len(errors) == 1 and "main thread" in str(errors[0])


def test_corrupt_record_file_is_ignored_then_rewritten(record_path: Path) -> None:
    record_path.parent.mkdir(parents=True)
    record_path.write_text("{not json")
    table = FakeTable()
    sup = ProcessSupervisor(record_path, proc_reader=table, killpg=table.killpg)
    try:
        assert sup.reap_leftovers(grace_s=0.1) == []
        assert json.loads(record_path.read_text()) == {"version": 1, "processes": []}
    finally:
        sup.close(grace_s=0.1)


def test_fallback_without_pdeathsig_warns_once(monkeypatch: pytest.MonkeyPatch, record_path: Path) -> None:
    monkeypatch.setattr(pdeathsig, "available", lambda: False)
    with pytest.warns(RuntimeWarning, match="PR_SET_PDEATHSIG unavailable") as caught:
        sup = ProcessSupervisor(record_path)
        try:
            procs = [sup.spawn(["sleep", "30"], cwd=None, env=None, owner="o", kind="k") for _ in range(2)]
            assert procs[0].args == ["sleep", "30"]  # spawned directly, no wrapper
            assert sorted(r.pid for r in load_records(record_path)) == sorted(p.pid for p in procs)
        finally:
            sup.close(grace_s=1.0)
    assert len(caught) == 1  # at construction, not per spawn


# ------------------------------------------------------------------------------------------------------- /proc
def test_parse_stat_survives_a_hostile_comm() -> None:
    fields = ["S", "1", "77", "77"] + ["0"] * 15 + ["123456", "999"]
    raw = b"42 (a) (b c) " + " ".join(fields).encode()
    assert parse_stat(42, raw) == ProcStat(pid=42, state="S", pgid=77, start_time=123456)
    assert parse_stat(42, b"garbage") is None


def test_linux_proc_reader_on_a_fake_procfs(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_bytes(b"42 (x y) Z 1 42 42 " + b"0 " * 15 + b"777 0")
    (tmp_path / "42" / "environ").write_bytes(b"A=1\0" + TAG_ENV.encode() + b"=abc\0")
    (tmp_path / "self").mkdir()
    reader = LinuxProcReader(tmp_path)
    assert reader.pids() == [42]
    st = reader.stat(42)
    assert st is not None and st.start_time == 777 and not st.alive  # a zombie is not alive
    assert reader.environ(42, TAG_ENV) == "abc"
    assert reader.environ(42, "MISSING") is None
    assert reader.stat(43) is None


# ------------------------------------------------------------------------------------------------------- the reaper
@dataclass
class FakeProc:
    pid: int
    pgid: int
    start_time: int
    tag: str | None = None
    ignores_term: bool = False
    state: str = "S"


@dataclass
class FakeTable:
    """A process table and a killpg that act on it: SIGTERM turns members into zombies unless they ignore it."""

    procs: dict[int, FakeProc] = field(default_factory=dict)
    signals: list[tuple[int, int]] = field(default_factory=list)

    def add(self, *procs: FakeProc) -> FakeTable:
        self.procs.update({p.pid: p for p in procs})
        return self

    def stat(self, pid: int) -> ProcStat | None:
        p = self.procs.get(pid)
        return None if p is None else ProcStat(p.pid, p.state, p.pgid, p.start_time)

    def pids(self) -> list[int]:
        return list(self.procs)

    def environ(self, pid: int, name: str) -> str | None:
        p = self.procs.get(pid)
        return p.tag if p is not None and p.state != "Z" and name == TAG_ENV else None

    def killpg(self, pgid: int, sig: int) -> None:
        self.signals.append((pgid, sig))
        members = [p for p in self.procs.values() if p.pgid == pgid and p.state != "Z"]
        if not members:
            raise ProcessLookupError
        for p in members:
            if sig == signal.SIGKILL or not p.ignores_term:
                p.state = "Z"


def _record(pid: int, *, start_time: int | None = 1000, tag: str = "t", **kw: object) -> ProcessRecord:
    base: dict[str, object] = {
        "pid": pid, "pgid": pid, "start_time": start_time, "argv": ("python", "train.py"), "owner": "training-job/j",
        "kind": "training-host", "tag": tag, "supervisor_pid": DEAD_SUPERVISOR, "supervisor_start_time": 5,
        "supervisor_id": "previous", "started_at": 0.0,
    }  # fmt: skip
    base.update(kw)
    return ProcessRecord(**base)  # type: ignore[arg-type]


def _reap(record_path: Path, table: FakeTable, *records: ProcessRecord) -> tuple[list[object], list[ProcessRecord]]:
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps({"version": 1, "processes": [r.to_json() for r in records]}))
    sup = ProcessSupervisor(record_path, proc_reader=table, killpg=table.killpg)
    try:
        reaped = sup.reap_leftovers(grace_s=0.2)
    finally:
        sup.close(grace_s=0.1)
    return list(reaped), load_records(record_path)


def test_reap_kills_a_live_leftover_group(record_path: Path) -> None:
    table = FakeTable().add(FakeProc(100, 100, 1000), FakeProc(101, 100, 1010), FakeProc(300, 300, 1))
    reaped, left = _reap(record_path, table, _record(100))
    assert [(r.record.pid, r.pids, r.forced) for r in reaped] == [(100, (100, 101), False)]  # type: ignore[attr-defined]
    assert table.signals == [(100, signal.SIGTERM)]
    assert table.procs[100].state == table.procs[101].state == "Z"
    assert table.procs[300].state == "S"
    assert left == []


def test_reap_escalates_to_sigkill(record_path: Path) -> None:
    table = FakeTable().add(FakeProc(100, 100, 1000, ignores_term=True))
    t0 = time.monotonic()
    reaped, left = _reap(record_path, table, _record(100))
    assert [r.forced for r in reaped] == [True]  # type: ignore[attr-defined]
    assert table.signals == [(100, signal.SIGTERM), (100, signal.SIGKILL)]
    assert 0.2 <= time.monotonic() - t0 < 2.0
    assert left == []


def test_reap_never_signals_a_recycled_pid(record_path: Path) -> None:
    # pid 100 now belongs to another process (other start time) that leads a group of its own with a child.
    table = FakeTable().add(FakeProc(100, 100, 5000, tag="t"), FakeProc(101, 100, 5001, tag="t"))
    reaped, left = _reap(record_path, table, _record(100, start_time=1000))
    assert reaped == []
    assert table.signals == []
    assert all(p.state == "S" for p in table.procs.values())
    assert left == []  # the stale record is dropped


def test_reap_drops_records_of_dead_processes(record_path: Path) -> None:
    table = FakeTable().add(FakeProc(7, 7, 1))
    reaped, left = _reap(record_path, table, _record(100), _record(200, tag="t2"))
    assert reaped == [] and table.signals == [] and left == []


def test_reap_kills_grandchildren_whose_leader_died(record_path: Path) -> None:
    # The child died by PDEATHSIG; a DataLoader worker (no PDEATHSIG after fork) lives on in its group, tagged.
    table = FakeTable().add(FakeProc(101, 100, 1010, tag="t"))
    reaped, left = _reap(record_path, table, _record(100))
    assert [r.pids for r in reaped] == [(101,)]  # type: ignore[attr-defined]
    assert table.signals == [(100, signal.SIGTERM)]
    assert left == []


def test_reap_spares_an_untagged_group_with_a_recycled_id(record_path: Path) -> None:
    # Leader gone and the group id reused by strangers (no tag, or another tag): not provably ours.
    table = FakeTable().add(FakeProc(101, 100, 1010), FakeProc(102, 100, 1020, tag="someone-else"))
    reaped, left = _reap(record_path, table, _record(100))
    assert reaped == [] and table.signals == [] and left == []


def test_reap_kills_the_group_of_a_zombie_leader(record_path: Path) -> None:
    # A zombie with the recorded start time still pins its pid, hence the group id: the group is ours.
    table = FakeTable().add(FakeProc(100, 100, 1000, state="Z"), FakeProc(101, 100, 1010))
    reaped, _ = _reap(record_path, table, _record(100))
    assert [r.pids for r in reaped] == [(101,)]  # type: ignore[attr-defined]


def test_reap_never_kills_without_a_start_time(record_path: Path) -> None:
    table = FakeTable().add(FakeProc(100, 100, 1000, tag="t"))
    reaped, left = _reap(record_path, table, _record(100, start_time=None))
    assert reaped == [] and table.signals == [] and left == []


def test_reap_leaves_records_of_a_live_supervisor_alone(record_path: Path) -> None:
    table = FakeTable().add(FakeProc(50, 50, 5), FakeProc(100, 100, 1000))
    live = _record(100, supervisor_pid=50, supervisor_start_time=5)
    reaped, left = _reap(record_path, table, live)
    assert reaped == [] and table.signals == [] and left == [live]


def test_reap_treats_a_recycled_supervisor_pid_as_dead(record_path: Path) -> None:
    table = FakeTable().add(FakeProc(50, 50, 999), FakeProc(100, 100, 1000))  # pid 50 started later: another one
    reaped, left = _reap(record_path, table, _record(100, supervisor_pid=50, supervisor_start_time=5))
    assert [r.record.pid for r in reaped] == [100] and left == []  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------------------- the wrapper
def _wrap(expected_ppid: int, *argv: str, **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(pdeathsig.wrapper_argv(expected_ppid, list(argv)), capture_output=True, timeout=10, **kw)  # type: ignore[call-overload, no-any-return]


@pytest.mark.skipif(not pdeathsig.available(), reason="needs prctl(PR_SET_PDEATHSIG)")
def test_wrapper_sets_pdeathsig_and_execs() -> None:
    code = "from local_aws import pdeathsig; print(pdeathsig.current())"
    env = {**os.environ, "PYTHONPATH": str(Path(pdeathsig.__file__).resolve().parent.parent)}
    done = _wrap(os.getpid(), sys.executable, "-c", code, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(int(signal.SIGKILL)).encode()  # survived exec


@pytest.mark.skipif(not pdeathsig.available(), reason="needs prctl(PR_SET_PDEATHSIG)")
def test_wrapper_dies_when_the_parent_is_already_gone(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    done = _wrap(os.getpid() + 1_000_000, "touch", str(marker))  # not our pid: as if reparented after a crash
    assert done.returncode == -signal.SIGKILL
    assert not marker.exists()


def test_wrapper_reports_exec_failure_and_usage() -> None:
    assert _wrap(os.getpid(), "/nonexistent/program").returncode == pdeathsig.EXIT_EXEC_FAILED
    bad = subprocess.run([sys.executable, pdeathsig.WRAPPER_PATH, "oops"], capture_output=True, timeout=10)
    assert bad.returncode == pdeathsig.EXIT_USAGE


def test_a_zombie_is_not_a_running_process() -> None:
    """`ops down` waits for a runtime to stop; an exited child its parent has not reaped yet answers kill(pid, 0),
    but must count as stopped (it held `down` for its whole 60 s budget before)."""
    import subprocess
    import time

    from local_aws.proctable import process_running

    child = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 5
        while LinuxProcReader().stat(child.pid) is not None and LinuxProcReader().stat(child.pid).state != "Z":  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(child.pid, 0)  # still "exists" for signal 0
        assert not process_running(child.pid)
    finally:
        child.wait()
    assert process_running(os.getpid())
    assert not process_running(0) and not process_running(-1)
