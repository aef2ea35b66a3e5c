"""A source dir's ``requirements.txt``, installed before the script runs, as the SageMaker training toolkit does.

The toolkit runs ``pip install -r requirements.txt`` in ``/opt/ml/code`` before a ``.py`` entry point
(sagemaker-contract.md §1.2 step 5). Locally the container's image is the runtime's own environment, so each distinct
requirements file gets a virtual environment *layered* on it: the venv's ``site-packages`` holds a ``.pth`` file naming
the runtime's ``site-packages``, so torch and friends are visible (and pip skips what they satisfy) while anything new
lands in the layer. Layers are cached by the sha256 of the file's content; the runtime's environment is never changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import venv
from dataclasses import dataclass
from pathlib import Path

from local_aws.processes import ProcessSupervisor

PIP_TIMEOUT_S = float(os.environ.get("LOCAL_SAGEMAKER_PIP_TIMEOUT", "900"))
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class RequirementsError(Exception):
    """pip could not install the requirements; the message is pip's own reason."""


@dataclass(frozen=True)
class JobPython:
    """The interpreter a job's scripts run with, and what to prepend to their PATH."""

    executable: str
    bin_dir: str | None = None


def has_requirements(path: Path) -> bool:
    """True when the file names at least one requirement (comments and blank lines do not count)."""
    if not path.is_file():
        return False
    return any(line.strip() and not line.lstrip().startswith("#") for line in path.read_text().splitlines())


def requirements_digest(requirements: Path) -> str:
    """sha256 of the file and of every local file or directory it names (``./pkg``, ``wheels/x.whl``, ``-r more.txt``).

    NOTE: SageMaker runs pip in a fresh container for every job; a layer cached on the file's text alone would keep
    serving an old build of a local package whose requirements line did not change.
    """
    digest = hashlib.sha256(requirements.read_bytes())
    for raw in requirements.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        for token in line.split():
            candidate = (requirements.parent / token).resolve()
            if token.startswith("-") or not candidate.exists() or not candidate.is_relative_to(requirements.parent):
                continue
            files = [candidate] if candidate.is_file() else sorted(p for p in candidate.rglob("*") if p.is_file())
            for file in files:
                digest.update(file.relative_to(requirements.parent).as_posix().encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def _lock_for(key: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def _pip_reason(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return " ".join(errors[-3:] if errors else lines[-3:])


def _pip_install(
    python: Path, requirements: Path, env: dict[str, str], supervisor: ProcessSupervisor
) -> tuple[int, str]:
    """Run pip in the layer through the runtime's supervisor, so it dies with the runtime."""
    argv = [str(python), "-m", "pip", "install", "-r", str(requirements)]
    with tempfile.TemporaryFile() as out:
        proc = supervisor.spawn(
            argv,
            cwd=requirements.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            owner=f"pip/{requirements.parent.name}",
            kind="pip",
        )
        try:
            code = proc.wait(timeout=PIP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            supervisor.stop(proc, 5)
            raise
        supervisor.kill_group(proc)
        out.seek(0)
        return code, out.read().decode("utf-8", "replace")


def job_python(requirements: Path, cache_dir: Path, supervisor: ProcessSupervisor) -> JobPython:
    """The interpreter for a job whose code dir holds ``requirements``; builds and caches its layer when needed.

    Args:
        requirements: the source dir's requirements.txt (may be missing or empty).
        cache_dir: the runtime's cache root (``<home>/cache``); layers go to ``<cache>/pyenvs/<sha12>``.
        supervisor: the runtime's process supervisor, which runs pip.

    Returns:
        The runtime's own interpreter when there is nothing to install, else the layer's.

    Raises:
        RequirementsError: pip failed; the message carries pip's reason.
    """
    if not has_requirements(requirements):
        return JobPython(sys.executable)
    digest = requirements_digest(requirements)
    layer = cache_dir / "pyenvs" / digest
    python = layer / "bin" / "python"
    with _lock_for(digest):
        if (layer / ".complete").is_file():
            return JobPython(str(python), str(layer / "bin"))
        if layer.exists():
            shutil.rmtree(layer)
        venv.EnvBuilder(with_pip=False, symlinks=True).create(layer)
        site = Path(
            subprocess.run(
                [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        # The layer sees the runtime's packages (pip included) through this .pth, after its own.
        (site / "_local_runtime_base.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON")) and k != "VIRTUAL_ENV"}
        # NOTE: pip's cache lives in the runtime's state dir, never in the user's ~/.cache (jobs must not write
        # into the host's shared caches).
        env.update(PIP_CACHE_DIR=str(cache_dir / "pip"), PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
        try:
            code, output = _pip_install(python, requirements, env, supervisor)
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(layer, ignore_errors=True)
            raise RequirementsError(f"pip install -r requirements.txt timed out after {PIP_TIMEOUT_S:g}s") from exc
        if code != 0:
            shutil.rmtree(layer, ignore_errors=True)
            raise RequirementsError(_pip_reason(output))
        (layer / ".complete").write_text(requirements.read_text())
    return JobPython(str(python), str(layer / "bin"))
