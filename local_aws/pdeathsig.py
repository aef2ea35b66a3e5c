"""Exec wrapper that makes a child die with the runtime: ``PR_SET_PDEATHSIG=SIGKILL``, a parent check, then exec.

Usage (what :class:`local_aws.processes.ProcessSupervisor` runs; ``-I -S`` keep the start-up to bare CPython)::

    python -I -S local_aws/pdeathsig.py [--errfd N] <expected-parent-pid> -- program [args...]
    python -m local_aws.pdeathsig <expected-parent-pid> -- program [args...]

Why a wrapper and not ``Popen(preexec_fn=...)``: the subprocess docs warn that ``preexec_fn`` is not safe in the
presence of threads (the child may deadlock on a lock some other thread held at fork time), and the runtime is full
of threads. This process is single-threaded, so it may call ``prctl`` freely before it ``exec``\\s the real program.

From ``man 2 prctl`` (PR_SET_PDEATHSIG), and why each point matters here:

* the signal is sent when the *thread* that created this process exits, not the whole parent process, so the
  supervisor forks from one long-lived thread;
* the setting survives ``execve`` (except of set-user-ID/set-group-ID or file-capability binaries) but is cleared in
  the children of ``fork``: grandchildren (DataLoader workers) get no signal, which is why the supervisor also kills
  whole process groups and reaps leftovers at start-up;
* if the parent already died before ``prctl`` ran, no signal will ever come; hence the ``getppid()`` check.

With ``--errfd N`` the wrapper reports a failed ``exec`` by writing the errno to fd ``N`` (closed on a successful
exec); :func:`popen`, the parent's side, raises it as ``Popen`` would (``FileNotFoundError``, ...). The wrapper
imports only what CPython has loaded anyway, plus ``ctypes``: it runs before every child.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing itself costs ~5 ms of start-up per child; mypy and ruff honour this name
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable
    from typing import Any

PR_SET_PDEATHSIG = 1  # /usr/include/linux/prctl.h
PR_GET_PDEATHSIG = 2
SIGKILL = 9  # signal(7): 9 on every Linux architecture; the signal module would import enum (~5 ms per child)
EXIT_USAGE = 2
EXIT_EXEC_FAILED = 127  # what a shell returns for a command it could not run
WRAPPER_PATH = os.path.abspath(__file__)  # noqa: PTH100 - os.path keeps the wrapper's imports minimal


def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` through ctypes, or None where there is none (not Linux, no ctypes)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        # dlopen(NULL): the symbols the interpreter already links, libc among them; no find_library subprocess.
        return ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None


def available() -> bool:
    """Whether ``PR_SET_PDEATHSIG`` can be used here: probes with the harmless ``PR_GET_PDEATHSIG``."""
    prctl = _prctl()
    if prctl is None:
        return False
    import ctypes

    value = ctypes.c_int(0)
    return bool(prctl(PR_GET_PDEATHSIG, ctypes.byref(value), 0, 0, 0) == 0)


def current() -> int:
    """This process's parent-death signal (0 when none), as ``PR_GET_PDEATHSIG`` reports it."""
    import ctypes

    prctl = _prctl()
    value = ctypes.c_int(0)
    if prctl is None or prctl(PR_GET_PDEATHSIG, ctypes.byref(value), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_GET_PDEATHSIG) failed")
    return value.value


def die_with_parent(parent_pid: int) -> None:
    """In this process: be SIGKILLed when the thread of ``parent_pid`` that started it exits; exit now if that parent
    is already gone. For a Python child started without the wrapper (a ``multiprocessing`` spawn), which runs no
    other thread yet when it calls this, so ``prctl`` is safe here.
    """
    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl ran: no signal would ever come
        os._exit(0)


def wrapper_argv(expected_parent_pid: int, argv: list[str], *, errfd: int | None = None) -> list[str]:
    """The command line that runs ``argv`` under this wrapper with the current interpreter."""
    extra = ["--errfd", str(errfd)] if errfd is not None else []
    return [sys.executable, "-I", "-S", WRAPPER_PATH, *extra, str(expected_parent_pid), "--", *argv]


def popen(argv: list[str], *, timeout_s: float = 10.0, **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **popen_kwargs)`` under the wrapper; returns once ``argv[0]`` has been exec'd.

    Call it on the thread that is to own the child (``man 2 prctl``). The returned ``Popen``'s ``args`` is ``argv``.
    If the wrapper has neither exec'd nor failed within ``timeout_s`` (a machine thrashing, or a bare ``os.fork``
    elsewhere holding a copy of the pipe), the ``Popen`` is returned anyway: an exec failure then shows as exit 127.

    Raises:
        OSError: what ``Popen`` itself would raise for ``argv`` (FileNotFoundError, PermissionError, ...).
    """
    import select
    import subprocess
    import time

    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(wrapper_argv(os.getpid(), argv, errfd=write_fd), pass_fds=(write_fd,), **popen_kwargs)
    finally:
        os.close(write_fd)
    report, deadline = b"", time.monotonic() + timeout_s
    try:
        poller = select.poll()  # not select.select: the runtime may hold more than FD_SETSIZE descriptors
        poller.register(read_fd, select.POLLIN)
        while (left := deadline - time.monotonic()) > 0 and poller.poll(left * 1000):
            if not (chunk := os.read(read_fd, 64)):
                break  # EOF: closed by a successful exec, or after the errno was written
            report += chunk
    finally:
        os.close(read_fd)
    if report:
        proc.wait(timeout=5)  # the wrapper exits 127 right after writing
        errno = int(report)
        raise OSError(errno, os.strerror(errno), argv[0])  # OSError() picks the subclass: FileNotFoundError, ...
    proc.args = argv  # callers report the command they ran, not the wrapper's
    return proc


def main(args: list[str]) -> int:
    """Set PDEATHSIG, check the parent, exec ``program``; returns (an exit code) only when that fails."""
    errfd: int | None = None
    if len(args) >= 2 and args[0] == "--errfd":
        errfd, args = int(args[1]), args[2:]
    if len(args) < 3 or args[1] != "--" or not args[0].isdigit():
        sys.stderr.write("usage: pdeathsig.py [--errfd N] <expected-parent-pid> -- program [args...]\n")
        return EXIT_USAGE
    expected, argv = int(args[0]), args[2:]
    prctl = _prctl()
    if prctl is None or prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0:
        # The supervisor probed availability first, so this is unexpected; run anyway, its reaper still applies.
        sys.stderr.write("local_aws.pdeathsig: PR_SET_PDEATHSIG unavailable; running without it\n")
    if os.getppid() != expected:
        # man 2 prctl: a parent that died before prctl() never signals us. Die the way PDEATHSIG would have.
        os.kill(os.getpid(), SIGKILL)
    if errfd is not None:
        os.set_inheritable(errfd, False)  # closed by a successful exec: the supervisor reads EOF = started
    try:
        os.execvp(argv[0], argv)  # the environment is the one Popen gave this process
    except OSError as exc:
        if errfd is not None:  # the supervisor raises it in the caller, as Popen would
            os.write(errfd, str(exc.errno or 5).encode())  # 5: EIO, should exec ever fail without an errno
        else:
            sys.stderr.write(f"local_aws.pdeathsig: cannot exec {argv[0]!r}: {exc}\n")
    return EXIT_EXEC_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
