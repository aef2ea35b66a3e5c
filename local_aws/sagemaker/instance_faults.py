"""``[chaos.endpoint]``: an endpoint instance that dies, at a chosen point, for tests and ``make chaos``.

SageMaker replaces an instance that fails its health checks (health.py); this switch makes one fail for real: after
an instance has answered its ``kill_after_invocations``-th invocation of the endpoint (counted per endpoint, from
when this server started or the config changed), its whole process group gets SIGKILL, as a host failure would
take it, and ``times`` says how often (default once)::

    [chaos.endpoint]
    kill_after_invocations = 3   # >= 1
    times = 1                    # >= 1

The kill comes after that invocation's answer was read, so that request succeeds; what follows is the real local
behaviour: the next request routed there is refused and goes to another instance (invocations.py), or fails with
SageMaker's errors when none is left, until the health monitor has replaced it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

from local_aws import chaos
from local_aws.sagemaker.fleet import Instance

LOGGER = logging.getLogger("local_aws.sagemaker")
SECTION = "endpoint"
_KEYS = {"kill_after_invocations", "times"}


def _positive_int(table: dict[str, Any], key: str, default: int | None) -> int | None:
    value = table.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise chaos.ChaosConfigError(f"[chaos.{SECTION}] {key} = {value!r}: expected an integer >= 1")
    return value


class InstanceFaults:
    """Counts invocations per endpoint and kills an instance where ``[chaos.endpoint]`` says."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.home = home
        self._lock = threading.Lock()
        self._config: tuple[int, int] | None = None
        self._counts: dict[str, int] = {}
        self._kills = 0

    def _read(self) -> tuple[int, int] | None:
        table = chaos.section(SECTION, self.home)
        unknown = set(table) - _KEYS
        if unknown:
            raise chaos.ChaosConfigError(
                f"[chaos.{SECTION}] unknown key(s) {sorted(unknown)}; valid keys: {sorted(_KEYS)}"
            )
        after = _positive_int(table, "kill_after_invocations", None)
        if after is None:
            return None
        times = _positive_int(table, "times", 1)
        assert times is not None
        return after, times

    def after_invocation(self, endpoint: str, instance: Instance) -> None:
        """Called once an invocation's answer was read from ``instance``."""
        try:
            config = self._read()
        except chaos.ChaosConfigError as exc:
            LOGGER.error("%s", exc)  # a bad switch must not fail the user's request; the log names the key
            return
        with self._lock:
            if config != self._config:  # a new or changed switch starts counting afresh
                self._config, self._counts, self._kills = config, {}, 0
            if config is None:
                return
            after, times = config
            count = self._counts.get(endpoint, 0) + 1
            self._counts[endpoint] = count
            if self._kills >= times or count % after:
                return
            self._kills += 1
        LOGGER.warning("[chaos.endpoint] killing instance pid %d of endpoint %s", instance.proc.pid, endpoint)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(instance.proc.pid, signal.SIGKILL)  # each instance leads its own session (processes.spawn)
        # SIGKILL is delivered asynchronously: wait until the process is gone, so the next request meets a dead
        # instance (refused), as it would after a host failure, not one still accepting its last connection.
        with contextlib.suppress(subprocess.TimeoutExpired):
            instance.proc.wait(timeout=10)
