"""Start, stop and reap the runtime's child processes, so that none outlives the runtime (building blocks §7).

Three layers, each for a way of ending the others cannot cover:

1. Orderly stop (:meth:`ProcessSupervisor.stop_all`, signal handlers, ``atexit``): SIGTERM to each child's process
   group, a grace period, SIGKILL. It needs Python code to run, so it cannot help after a SIGKILL of the runtime.
2. PDEATHSIG: every child starts under :mod:`local_aws.pdeathsig`, so the kernel SIGKILLs it when the runtime dies,
   however it dies. ``man 2 prctl``: the signal fires when the *thread* that forked the child exits, so all forks
   happen on one long-lived spawner thread owned by the supervisor, never on a request or job thread.
3. Reaping at start-up: ``man 2 prctl`` also says the setting is cleared in the children of ``fork``, so
   grandchildren (DataLoader workers) outlive a crash. Every child is recorded (pid, pgid, start time, a tag in its
   environment) in ``StateLayout(home).processes``; :meth:`ProcessSupervisor.reap_leftovers` kills the groups a dead
   runtime left and never a process it cannot prove is ours (a recycled pid; the proof is :mod:`local_aws.leftovers`).

Pid-reuse safety rests on a kernel rule: a pid number is not handed out again while a process still uses it as its
pid, process-group id or session id. So while our child (running or a zombie) or any member of its group lives,
``killpg(pgid)`` can only reach our group; beyond that, start times from ``/proc/<pid>/stat`` and the tag decide.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from local_aws import pdeathsig
from local_aws.leftovers import POLL_S, GroupProbe, signal_groups
from local_aws.proctable import (
    TAG_ENV,
    LinuxProcReader,
    ProcessRecord,
    ProcReader,
    ReapedProcess,
    load_records,
    write_records,
)

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 1.0  # the idle spawner thread drops records of children whose whole group is gone
KILL_WAIT_S = 5.0  # after SIGKILL, for the kernel to finish a process (uninterruptible sleep can delay it)
LEFTOVER_GRACE_S = 2.0
EXIT_GRACE_S = 10.0

Stream = int | IO[Any] | None  # what Popen accepts for stdin/stdout/stderr


def _leader_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the child has exited, *without* reaping it: an unreaped zombie keeps its group id from reuse."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True  # reaped behind Popen's back
    except AttributeError:  # no waitid (macOS)
        return proc.poll() is not None


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    record: ProcessRecord


@dataclass
class _SpawnRequest:
    argv: list[str]
    cwd: str | Path | None
    env: dict[str, str]
    streams: tuple[Stream, Stream, Stream]
    owner: str
    kind: str
    result: Future[subprocess.Popen[bytes]] = field(default_factory=Future)


class ProcessSupervisor:
    """Starts the runtime's children, stops them, reaps what a crashed runtime left behind. Thread-safe.

    Args:
        record_path: the record file, ``StateLayout(home).processes``.
        proc_reader: the process table (default ``/proc``); tests pass a fake.
        killpg: signals a process group (default :func:`os.killpg`); tests pass a fake.
        use_pdeathsig: None detects ``prctl`` (warning once if absent); False spawns without the wrapper.
    """

    def __init__(
        self,
        record_path: Path,
        *,
        proc_reader: ProcReader | None = None,
        killpg: Callable[[int, int], None] = os.killpg,
        use_pdeathsig: bool | None = None,
    ) -> None:
        self.record_path = Path(record_path)
        self._reader: ProcReader = proc_reader or LinuxProcReader()
        self._probe = GroupProbe(self._reader)
        self._killpg = killpg
        self._pid, self._id = os.getpid(), uuid.uuid4().hex
        me = self._reader.stat(self._pid)
        self._start_time = me.start_time if me else None
        self._pdeathsig = bool(sys.executable) and pdeathsig.available() if use_pdeathsig is None else use_pdeathsig
        if not self._pdeathsig and use_pdeathsig is None:
            msg = "PR_SET_PDEATHSIG unavailable: children of a SIGKILLed runtime live on until reap_leftovers()"
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
        self._lock = threading.RLock()  # reentrant: a signal handler may stop_all while the main thread holds it
        self._flock_held = False  # only ever changed by the thread holding _lock
        self._children: dict[int, _Child] = {}
        self._accepting, self._closed, self._atexit = True, False, False
        self._signal_state, self._exit_grace_s = "idle", EXIT_GRACE_S
        self._queue: queue.Queue[_SpawnRequest | None] = queue.Queue()
        self._thread = threading.Thread(target=self._spawner, name="process-spawner", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------------------------------ spawning
    def spawn(
        self,
        argv: Sequence[str],
        *,
        cwd: str | Path | None,
        env: Mapping[str, str] | None,
        stdin: Stream = subprocess.DEVNULL,
        stdout: Stream = None,
        stderr: Stream = None,
        owner: str,
        kind: str,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in a new session with PDEATHSIG=SIGKILL, recorded for reaping. Callable from any thread.

        The fork happens on the supervisor's spawner thread; this returns once the real program has been exec'd, so
        a file object passed as a stream may be closed right after.

        Args:
            argv: the program (looked up on ``env["PATH"]``, like ``Popen``) and its arguments.
            cwd: the child's working directory.
            env: its whole environment (None: this process's); ``$LOCAL_AWS_PROCESS_TAG`` is added.
            stdin: default DEVNULL, so that no child reads the runtime's terminal.
            stdout: as for ``Popen``: an open file, ``PIPE``, None to inherit.
            stderr: as for ``Popen``; ``STDOUT`` merges it into stdout.
            owner: who it belongs to, e.g. ``training-job/<name>``.
            kind: what it is, e.g. ``training-host``.

        Returns:
            The ``Popen``, whose ``args`` is ``argv`` (not the wrapper's command line); the caller waits on it.

        Raises:
            OSError: as ``Popen`` raises it (FileNotFoundError for a missing program or cwd, PermissionError, ...).
            RuntimeError: the supervisor is shutting down.
        """
        if not argv:
            raise ValueError("argv must not be empty")
        env = dict(os.environ if env is None else env)
        request = _SpawnRequest([os.fspath(a) for a in argv], cwd, env, (stdin, stdout, stderr), owner, kind)
        with self._lock:
            self._check_accepting()
            self._queue.put(request)
        return request.result.result()

    def _check_accepting(self) -> None:
        if not self._accepting:
            raise RuntimeError("ProcessSupervisor is shutting down: no new child processes")

    def _spawner(self) -> None:
        """The one thread that forks. PDEATHSIG is bound to it (``man 2 prctl``), so it must outlive every child."""
        while True:
            try:
                request = self._queue.get(timeout=PRUNE_INTERVAL_S)
            except queue.Empty:
                try:
                    self._prune()
                except Exception:  # this thread must not die: its exit would SIGKILL every child
                    log.exception("pruning the process records failed")
                continue
            if request is None:
                return
            try:
                request.result.set_result(self._start(request))
            except Exception as exc:
                request.result.set_exception(exc)

    def _start(self, request: _SpawnRequest) -> subprocess.Popen[bytes]:
        with self._lock:
            self._check_accepting()
        request.env[TAG_ENV] = tag = uuid.uuid4().hex
        proc = self._popen(request, wrapped=self._pdeathsig)
        stat = self._reader.stat(proc.pid)  # the start time survives exec: it is the fork's
        record = ProcessRecord(
            proc.pid,
            proc.pid,
            stat.start_time if stat else None,
            tuple(request.argv[:3]),
            request.owner,
            request.kind,
            tag,
            self._pid,
            self._start_time,
            self._id,
            time.time(),
        )
        child = _Child(proc, record)
        with self._lock:
            self._children[proc.pid] = child
            self._save()
            late = not self._accepting
        if late:  # stop_all ran while this child was starting and could not see it
            self._terminate([child], 0.0)
            self._check_accepting()
        return proc

    @staticmethod
    def _popen(request: _SpawnRequest, wrapped: bool) -> subprocess.Popen[bytes]:
        stdin, stdout, stderr = request.streams
        start = pdeathsig.popen if wrapped else subprocess.Popen
        return start(
            request.argv,
            cwd=request.cwd,
            env=request.env,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own session and group: killpg reaches everything it forks
        )

    # ------------------------------------------------------------------------------------------------------ stopping
    def stop(self, proc: subprocess.Popen[bytes], grace_s: float) -> int | None:
        """SIGTERM the child's group, wait up to ``grace_s``, SIGKILL what is left, reap it, drop its record.

        Returns:
            Its return code (negative: the signal that ended it), None if it could not be reaped in time.
        """
        return self.stop_many([proc], grace_s)[0]

    def stop_many(self, procs: Sequence[subprocess.Popen[bytes]], grace_s: float) -> list[int | None]:
        """:meth:`stop` for several children, sharing one grace period (not one each); their return codes, in order."""
        self._terminate([self._child_for(proc) for proc in procs], grace_s)
        return [proc.returncode for proc in procs]

    def stop_all(self, grace_s: float) -> list[ProcessRecord]:
        """For shutdown: stop every child in parallel, within ``grace_s`` plus a few seconds. Later spawns raise.

        Returns:
            The records of the children it stopped.
        """
        with self._lock:
            self._accepting = False  # a spawn already under way sees this when it registers, and stops its child
            children = list(self._children.values())
        self._terminate(children, grace_s)
        return [c.record for c in children]

    def kill_group(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL all that is left in the child's group (the child too, if it still runs); reap; drop the record.

        For a child that ended normally but may have left grandchildren (DataLoader workers). Safe after
        ``proc.wait()``: the group is then only signalled if a live member carries the child's tag.
        """
        child = self._child_for(proc)
        self._signal_group(child, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=KILL_WAIT_S)
        self._forget([child])

    def children(self) -> list[ProcessRecord]:
        """The records of the children tracked now."""
        with self._lock:
            return [c.record for c in self._children.values()]

    def _terminate(self, children: list[_Child], grace_s: float) -> None:
        for child in children:
            self._signal_group(child, signal.SIGTERM)
        deadline, pending = time.monotonic() + grace_s, children
        while True:
            live = self._probe.live_pgids()  # done = the child exited and nothing is left in its group
            pending = [c for c in pending if not (_leader_exited(c.proc) and c.record.pgid not in live)]
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
        for child in pending:
            self._signal_group(child, signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT_S  # one deadline for all: the total stays bounded
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        # The kernel ends each SIGKILLed member of a group on its own time: wait for the groups to empty as well,
        # so a stop that returned has left nothing running.
        killed = {c.record.pgid for c in pending}
        while killed & self._probe.live_pgids() and time.monotonic() < deadline:
            time.sleep(POLL_S)
        self._forget([c for c in children if c.proc.returncode is not None])

    def _signal_group(self, child: _Child, sig: int) -> None:
        # Unreaped, the child (live or zombie) pins the group id: the group is ours. Reaped, only a live member with
        # our tag proves the group id was not recycled.
        if child.proc.returncode is None or self._probe.tagged(child.record):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                self._killpg(child.record.pgid, sig)

    def _child_for(self, proc: subprocess.Popen[bytes]) -> _Child:
        with self._lock:
            child = self._children.get(proc.pid)
        if child is not None and child.proc is proc:
            return child
        # Not (or no longer) tracked: without a tag it is only signalled while Popen has not reaped it.
        return _Child(proc, ProcessRecord(proc.pid, proc.pid, None, (), "", "", "", self._pid, None, self._id, 0))

    def _forget(self, children: Iterable[_Child]) -> None:
        with self._lock:
            gone = [c for c in children if self._children.get(c.record.pid) is c]
            for child in gone:
                del self._children[child.record.pid]
            if gone:
                self._save()

    def _prune(self) -> None:
        """Drop the records of children that exited leaving their group empty (Popen.wait stays the caller's)."""
        with self._lock:
            exited = [c for c in self._children.values() if _leader_exited(c.proc)]
        if exited:
            live = self._probe.live_pgids()
            self._forget(c for c in exited if c.record.pgid not in live)

    # ------------------------------------------------------------------------------------------------------ records
    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Hold ``_lock`` and an flock on ``<record file>.lock``: another runtime may share the home dir."""
        with self._lock:
            if self._flock_held:  # a signal handler re-entering: this thread holds the flock already
                yield
                return
            self.record_path.parent.mkdir(parents=True, exist_ok=True)
            lock_path = self.record_path.with_name(self.record_path.name + ".lock")
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            # The flag is up whenever the flock might be held, so a handler interrupting us never waits for it.
            self._flock_held = True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock
                self._flock_held = False

    def _save(self) -> None:
        """Rewrite the record file: other supervisors' entries as found, ours from memory."""
        try:
            with self._file_lock():
                mine = [c.record for c in self._children.values()]
                others = [r for r in load_records(self.record_path) if r.supervisor_id != self._id]
                write_records(self.record_path, [*others, *mine])
        except OSError:  # the child runs and stop_all still reaches it; only crash reaping is degraded
            log.exception("cannot write the process record file %s", self.record_path)

    def reap_leftovers(self, grace_s: float = LEFTOVER_GRACE_S) -> list[ReapedProcess]:
        """At start-up: kill the process groups that dead runtimes left behind, and drop their records.

        A record is left over when its supervisor is gone (no such pid, or one with another start time). Its group
        gets SIGTERM, ``grace_s``, SIGKILL, but only if provably ours: the child still runs with the recorded start
        time, or it is gone and a member of its group carries its tag. A recycled pid is never signalled.

        Returns:
            The groups it killed.
        """
        with self._file_lock():
            records = load_records(self.record_path)
        leftovers = [r for r in records if r.supervisor_id != self._id and not self._probe.supervisor_alive(r)]
        found = [(r, members) for r in leftovers if (members := self._probe.leftover_members(r))]
        signal_groups(found, signal.SIGTERM, self._killpg)
        pending = self._probe.wait_gone(found, grace_s)
        signal_groups(pending, signal.SIGKILL, self._killpg)
        survivors = {r.tag for r, _ in self._probe.wait_gone(pending, KILL_WAIT_S)}  # kept, for the next start
        done = {r.tag for r in leftovers} - survivors
        with self._file_lock():
            write_records(self.record_path, [r for r in load_records(self.record_path) if r.tag not in done])
        forced = {r.tag for r, _ in pending}
        reaped = [ReapedProcess(r, tuple(s.pid for s in m), r.tag in forced) for r, m in found]
        for item in reaped:
            log.warning("killed leftover %s of %s: pids %s", list(item.record.argv), item.record.owner, item.pids)
        return reaped

    # ------------------------------------------------------------------------------------------------------ shutdown
    def install_signal_handlers(self, grace_s: float = EXIT_GRACE_S) -> None:
        """On the main thread: SIGTERM/SIGINT run :meth:`stop_all` once, then the previous handler; same at exit.

        Where the previous handler was the default action, ``SystemExit(128 + signum)`` is raised, so ``finally``
        blocks and ``atexit`` run. A signal arriving while the children are being stopped is ignored. SIGKILL runs
        no handler at all: that case is what PDEATHSIG and :meth:`reap_leftovers` are for.

        Raises:
            RuntimeError: not on the main thread (Python runs signal handlers only there).
        """
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("install_signal_handlers() must be called from the main thread")
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handler(signal.getsignal(signum), grace_s))
        with self._lock:
            self._exit_grace_s = grace_s
            if not self._atexit:
                atexit.register(self._at_exit)
                self._atexit = True

    def _handler(self, previous: Any, grace_s: float) -> Callable[[int, FrameType | None], None]:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self._signal_state == "stopping":
                return
            if self._signal_state == "idle":
                self._signal_state = "stopping"
                try:
                    self.stop_all(grace_s)
                finally:
                    self._signal_state = "done"
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                raise SystemExit(128 + signum)

        return on_signal

    def _at_exit(self) -> None:
        if not self._closed:
            self.stop_all(self._exit_grace_s)

    def close(self, grace_s: float = EXIT_GRACE_S) -> None:
        """Stop every child, then the spawner thread (whose exit would SIGKILL any child left, by PDEATHSIG)."""
        self.stop_all(grace_s)
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=KILL_WAIT_S)
        if self._atexit:
            atexit.unregister(self._at_exit)

    def __enter__(self) -> ProcessSupervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
