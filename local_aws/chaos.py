"""The local runtime's fault switches: one documented ``[chaos]`` section, re-read whenever it changes.

Where AWS always behaves a certain way (history quota, capacity, autoscaling), the local runtime does so with no
switch. Faults that AWS produces only sometimes (API throttling, a quota, a spot interruption) are injected from this
one file, ``$LOCAL_RUNTIME_HOME/config.toml``, so the same switches work from a test, from ``make chaos`` and from a
user's own shell, across the runtime's process and its training or endpoint subprocesses::

    [chaos.throttle]           # local_aws/sagemaker: ThrottlingException, as the SageMaker API sends it
    [chaos.quota]              # local_aws/sagemaker: ResourceLimitExceeded past an instance quota
    [chaos.spot]               # local_aws/sagemaker/training: a spot interruption at a chosen point
    [[chaos.errors]]           # local_aws/injected_errors.py: any API's modeled error, at the edge

Each consumer parses and validates its own section (a bad value is a clear error naming the key and the valid
ones); this module only finds the file, parses TOML (stdlib ``tomllib``: no dependency for a solved problem) and
caches the result by the file's mtime and size, so a test that rewrites the file switches faults between calls
without a restart. ``LOCAL_AWS_CONFIG`` points elsewhere (a test's private file).
"""

from __future__ import annotations

import os
import threading
import tomllib
from pathlib import Path
from typing import Any

from local_aws.constants import home_dir

ENV_CONFIG = "LOCAL_AWS_CONFIG"
CONFIG_NAME = "config.toml"


class ChaosConfigError(ValueError):
    """The config file is not valid TOML, or a section holds a value its consumer refuses."""


def config_path(home: str | Path | None = None) -> Path:
    """``$LOCAL_AWS_CONFIG`` if set, else ``<home>/config.toml``."""
    explicit = os.environ.get(ENV_CONFIG)
    return Path(explicit).expanduser() if explicit else home_dir(home) / CONFIG_NAME


_CACHE: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}
_LOCK = threading.Lock()


def _load(path: Path) -> dict[str, Any]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return {}
    key = (stat.st_mtime_ns, stat.st_size)
    with _LOCK:
        cached = _CACHE.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
    try:
        parsed = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ChaosConfigError(f"{path}: not valid TOML: {exc}") from None
    chaos = parsed.get("chaos", {})
    if not isinstance(chaos, dict):
        raise ChaosConfigError(f"{path}: [chaos] must be a table, got {type(chaos).__name__}")
    with _LOCK:
        _CACHE[path] = (key, chaos)
    return chaos


def section(name: str, home: str | Path | None = None) -> dict[str, Any]:
    """The ``[chaos.<name>]`` table (empty when the file or the table is absent: no fault)."""
    value = _load(config_path(home)).get(name, {})
    if not isinstance(value, dict):
        raise ChaosConfigError(f"[chaos.{name}] must be a table, got {type(value).__name__}")
    return value


def tables(name: str, home: str | Path | None = None) -> list[dict[str, Any]]:
    """The ``[[chaos.<name>]]`` array of tables (empty when absent: no fault).

    The list is the same object until the file changes, so a consumer can tell "the file changed" by identity.
    """
    value = _load(config_path(home)).get(name, _NO_TABLES)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ChaosConfigError(f"[[chaos.{name}]] must be an array of tables, got {type(value).__name__}")
    return value


_NO_TABLES: list[dict[str, Any]] = []
