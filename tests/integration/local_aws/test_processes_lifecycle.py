"""ProcessSupervisor with real processes: a SIGKILLed runtime leaves no orphan behind, stop() escalates, and so on.

The "runtime" is this file run as a script (``python test_processes_lifecycle.py runtime <dir> [--signals]``): it
spawns, from a short-lived thread on purpose, a child that forks a grandchild into its own group, then waits.
Every check reads ``/proc`` (a zombie counts as dead), and every test kills what it started in ``finally``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_aws import pdeathsig
from local_aws.processes import ProcessSupervisor
from local_aws.proctable import LinuxProcReader, load_records

REPO_ROOT = Path(__file__).resolve().parents[3]
READER = LinuxProcReader()
pytestmark = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and pdeathsig.available()), reason="needs Linux /proc and PR_SET_PDEATHSIG"
)

# The child: forks a grandchild (no PDEATHSIG of its own: fork clears it), reports both pids, sleeps.
CHILD = """
import json, os, sys, time
grandchild = os.fork()
if grandchild == 0:
    time.sleep(120)
    os._exit(0)
out = sys.argv[1]
with open(out + ".tmp", "w") as f:
    json.dump({"child": os.getpid(), "grandchild": grandchild}, f)
os.replace(out + ".tmp", out)
time.sleep(120)
"""


def runtime_main(workdir: Path, signals: bool) -> int:
    """The helper runtime: a supervisor, one child spawned from a thread that exits at once, then idle."""
    sup = ProcessSupervisor(workdir / "processes.json")
    if signals:
        sup.install_signal_handlers(grace_s=2.0)
    box: dict[str, subprocess.Popen[bytes]] = {}

    def start() -> None:
        argv = [sys.executable, "-c", CHILD, str(workdir / "pids.json")]
        box["proc"] = sup.spawn(argv, cwd=workdir, env=None, owner="training-job/t", kind="training-host")

    thread = threading.Thread(target=start, name="short-lived-request")
    thread.start()
    thread.join()  # the thread that asked for the child is gone from here on
    (workdir / "runtime.tmp").write_text(json.dumps({"pid": os.getpid()}))
    (workdir / "runtime.tmp").replace(workdir / "runtime.json")
    while True:
        time.sleep(0.1)  # the main thread stays interruptible, so the signal handlers can run


# ---------------------------------------------------------------------------------------------------------- helpers
def _alive(pid: int, start_time: int | None = None) -> bool:
    st = READER.stat(pid)
    return st is not None and st.alive and (start_time is None or st.start_time == start_time)


def _wait_for(predicate: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return bool(predicate())  # type: ignore[operator]


class Processes:
    """What a test started, by (pid, start time), so cleanup never signals a recycled pid."""

    def __init__(self) -> None:
        self.started: list[tuple[int, int]] = []

    def track(self, *pids: int) -> None:
        for pid in pids:
            st = READER.stat(pid)
            if st is not None:
                self.started.append((pid, st.start_time))

    def kill_all(self) -> None:
        for pid, start in self.started:
            if _alive(pid, start):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def procs() -> Iterator[Processes]:
    tracked = Processes()
    try:
        yield tracked
    finally:
        tracked.kill_all()


def _start_runtime(workdir: Path, procs: Processes, *, signals: bool) -> tuple[subprocess.Popen[bytes], int, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    argv = [sys.executable, __file__, "runtime", str(workdir), *(["--signals"] if signals else [])]
    runtime = subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)
    procs.track(runtime.pid)
    ready = _wait_for(lambda: (workdir / "runtime.json").exists() and (workdir / "pids.json").exists(), 15)
    assert ready, f"helper runtime did not start (rc={runtime.poll()})"
    pids = json.loads((workdir / "pids.json").read_text())
    procs.track(pids["child"], pids["grandchild"])
    return runtime, pids["child"], pids["grandchild"]


# ------------------------------------------------------------------------------------------------------------ tests
def test_sigkilled_runtime_leaves_nothing_behind(tmp_path: Path, procs: Processes) -> None:
    """(a) PDEATHSIG kills the child; the next supervisor's reaper kills the grandchild it left in its group."""
    runtime, child, grandchild = _start_runtime(tmp_path, procs, signals=False)
    try:
        time.sleep(0.3)
        assert _alive(child), "the child died with the short-lived thread that requested it"
        runtime.kill()  # SIGKILL: no handler, no atexit
        runtime.wait(timeout=5)
        assert _wait_for(lambda: not _alive(child), 2.0), "PDEATHSIG did not kill the child within 2 s"
        assert _alive(grandchild), "expected the grandchild to outlive the child (fork clears PDEATHSIG)"
        [record] = load_records(tmp_path / "processes.json")
        assert (record.pid, record.owner) == (child, "training-job/t")

        with ProcessSupervisor(tmp_path / "processes.json") as sup:
            reaped = sup.reap_leftovers(grace_s=1.0)
        assert [(r.record.pid, r.pids) for r in reaped] == [(child, (grandchild,))]
        assert not _alive(grandchild)
        assert load_records(tmp_path / "processes.json") == []
    finally:
        runtime.kill()
        runtime.wait(timeout=5)


def test_orderly_sigterm_stops_every_child(tmp_path: Path, procs: Processes) -> None:
    """(d) SIGTERM to the runtime: its handler stops child and grandchild, then the runtime exits 128+15."""
    runtime, child, grandchild = _start_runtime(tmp_path, procs, signals=True)
    try:
        runtime.send_signal(signal.SIGTERM)
        assert runtime.wait(timeout=10) == 128 + signal.SIGTERM
        assert not _alive(child)
        assert not _alive(grandchild)  # killed with its group, not left for the reaper
        assert load_records(tmp_path / "processes.json") == []
    finally:
        runtime.kill()
        runtime.wait(timeout=5)


def test_stop_escalates_to_sigkill(tmp_path: Path, procs: Processes) -> None:
    """(b) A child that ignores SIGTERM is SIGKILLed once the grace is over, within grace + 1 s."""
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    with ProcessSupervisor(tmp_path / "processes.json") as sup:
        proc = sup.spawn(
            [sys.executable, "-c", code], cwd=None, env=None, stdout=subprocess.PIPE, owner="endpoint/e", kind="k"
        )
        procs.track(proc.pid)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        t0 = time.monotonic()
        assert sup.stop(proc, grace_s=1.0) == -signal.SIGKILL
        elapsed = time.monotonic() - t0
        proc.stdout.close()
        assert 1.0 <= elapsed < 2.0
        assert load_records(tmp_path / "processes.json") == []


def test_spawn_from_an_exiting_thread_keeps_the_child(tmp_path: Path, procs: Processes) -> None:
    """(c) The requesting thread may exit: PDEATHSIG is bound to the supervisor's spawner thread, not to it."""
    code = "from local_aws import pdeathsig; import time; print(pdeathsig.current(), flush=True); time.sleep(60)"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with ProcessSupervisor(tmp_path / "processes.json") as sup:
        box: dict[str, subprocess.Popen[bytes]] = {}

        def start() -> None:
            argv = [sys.executable, "-c", code]
            box["proc"] = sup.spawn(argv, cwd=None, env=env, stdout=subprocess.PIPE, owner="o", kind="k")

        thread = threading.Thread(target=start)
        thread.start()
        thread.join()
        proc = box["proc"]
        procs.track(proc.pid)
        assert proc.stdout is not None and proc.stdout.readline() == b"9\n"  # PDEATHSIG=SIGKILL is set
        time.sleep(0.5)
        assert proc.poll() is None, "the child died with the thread that requested it"
        sup.stop(proc, grace_s=1.0)
        proc.stdout.close()


def test_control_pdeathsig_really_is_bound_to_the_forking_thread(procs: Processes) -> None:
    """Control for (c): the same wrapper forked directly from a short-lived thread dies when that thread exits."""
    box: dict[str, subprocess.Popen[bytes]] = {}
    ready = threading.Event()

    def start() -> None:
        box["proc"] = subprocess.Popen(pdeathsig.wrapper_argv(os.getpid(), ["sleep", "60"]), start_new_session=True)
        procs.track(box["proc"].pid)
        time.sleep(0.3)  # give the wrapper time to set PDEATHSIG before this thread exits
        ready.set()

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    assert ready.is_set()
    assert box["proc"].wait(timeout=5) == -signal.SIGKILL


def test_kill_group_reaps_grandchildren_of_a_finished_job(tmp_path: Path, procs: Processes) -> None:
    """After a normal exit (and proc.wait()), kill_group() still finds the leftover worker by its tag."""
    with ProcessSupervisor(tmp_path / "processes.json") as sup:
        argv = ["/bin/sh", "-c", "sleep 60 & echo $!"]
        proc = sup.spawn(argv, cwd=None, env=None, stdout=subprocess.PIPE, owner="training-job/j", kind="k")
        assert proc.stdout is not None
        grandchild = int(proc.stdout.readline())
        procs.track(grandchild)
        assert proc.wait(timeout=5) == 0
        time.sleep(1.5)  # a prune pass runs meanwhile: the group is not empty, so the record must stay
        assert [r.pid for r in load_records(tmp_path / "processes.json")] == [proc.pid]
        assert _alive(grandchild)
        sup.kill_group(proc)
        assert _wait_for(lambda: not _alive(grandchild), 2.0)
        assert load_records(tmp_path / "processes.json") == []
        proc.stdout.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["runtime"]:
        sys.exit(runtime_main(Path(sys.argv[2]), "--signals" in sys.argv[3:]))
    sys.exit(f"usage: {sys.argv[0]} runtime <dir> [--signals]")
