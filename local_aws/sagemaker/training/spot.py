"""Managed spot training: interruptions from ``[chaos.spot]``, the MaxWaitTimeInSeconds limit, and billable time.

Switch (``$LOCAL_RUNTIME_HOME/config.toml``, see ``local_aws/chaos.py``; read while each job runs)::

    [chaos.spot]
    after_seconds = 20           # AWS seconds into an attempt's Training phase at which its instances are reclaimed
    times = 1                    # interruptions per managed-spot job (EnableManagedSpotTraining = true)
    capacity_wait_seconds = 60   # AWS seconds the job then waits, Interrupted, for new capacity (default 60)

Only jobs created with ``EnableManagedSpotTraining`` are interrupted; on-demand jobs never are. An interruption stops
the hosts as a stop does (SIGTERM, SIGKILL after the stop grace), syncs ``CheckpointConfig.LocalPath`` to its S3Uri,
sets SecondaryStatus ``Interrupted`` and, after the capacity wait, walks ``Starting`` → ``Downloading`` →
``Training`` again on fresh hosts, whose checkpoint directory is filled from the S3Uri first, so a script that
checkpoints resumes (the lifecycle in docs.aws.amazon.com/sagemaker/latest/dg/model-managed-spot-training.html:
"InProgress: Starting ↠ Downloading ↠ Training ↠ Interrupted ↠ Starting ↠ Downloading ↠ Training ↠ Uploading"; "When
the job is restarted, SageMaker copies the data from Amazon S3 back into the local path").

Time (all in AWS seconds, ``local_aws/clock.py``): TrainingTimeInSeconds runs from the first Downloading to the end,
interruptions included; BillableTimeInSeconds counts only the time instances ran (each attempt from Downloading to
its end), so the Interrupted wait is not billed and a spot job that was interrupted reports BillableTimeInSeconds <
TrainingTimeInSeconds (the API reference's savings formula ``(1 - BillableTimeInSeconds / TrainingTimeInSeconds) *
100``). AWS does not document how it splits the two across an interruption: this split is the local model.
MaxRuntimeInSeconds bounds the billable (running) time; MaxWaitTimeInSeconds bounds the whole wall time since
CreateTrainingJob ("the amount of time spent waiting for Spot capacity plus the amount of time the job can run"):
past it the job goes Stopping, then Stopped with SecondaryStatus ``MaxWaitTimeExceeded``, as the lifecycle shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_aws import chaos, clock

SECTION = "spot"
KEYS = ("after_seconds", "times", "capacity_wait_seconds")
DEFAULT_CAPACITY_WAIT_S = 60.0


class Interrupted(Exception):
    """The attempt's instances were reclaimed; the job waits for capacity and starts again."""


@dataclass(frozen=True)
class SpotChaos:
    after_seconds: float
    times: int
    capacity_wait_seconds: float


def _number(table: dict[str, Any], key: str, default: float | None, integer: bool = False) -> float | None:
    value = table.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float) or value < 0:
        valid = "an integer >= 0" if integer else "a number of AWS seconds >= 0"
        raise chaos.ChaosConfigError(f"[chaos.{SECTION}] {key} = {value!r} is not valid; valid: {valid}")
    return float(value)


def parse(table: dict[str, Any]) -> SpotChaos | None:
    """Validate the section; None when it is absent (no interruption).

    Raises:
        chaos.ChaosConfigError: an unknown key or a bad value, naming it and the valid values.
    """
    if not table:
        return None
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise chaos.ChaosConfigError(f"[chaos.{SECTION}] unknown key {unknown[0]!r}; valid keys: {', '.join(KEYS)}")
    after = _number(table, "after_seconds", None)
    if after is None:
        raise chaos.ChaosConfigError(f"[chaos.{SECTION}] after_seconds is required, e.g. after_seconds = 20")
    times = _number(table, "times", 1, integer=True)
    wait = _number(table, "capacity_wait_seconds", DEFAULT_CAPACITY_WAIT_S)
    assert times is not None and wait is not None
    return SpotChaos(after, int(times), wait)


def settings(home: str | Path | None) -> SpotChaos | None:
    """The current ``[chaos.spot]`` (re-read when the file changes)."""
    return parse(chaos.section(SECTION, home))


def is_spot(record: dict[str, Any]) -> bool:
    return bool(record.get("EnableManagedSpotTraining"))


def interruption_due(record: dict[str, Any], done: int, training_aws_s: float, home: str | Path | None) -> bool:
    """Whether the attempt that has trained ``training_aws_s`` AWS seconds is interrupted now."""
    if not is_spot(record):
        return False
    config = settings(home)
    return config is not None and done < config.times and training_aws_s >= config.after_seconds


def capacity_wait_s(home: str | Path | None) -> float:
    """AWS seconds an interrupted job waits for new instances."""
    config = settings(home)
    return config.capacity_wait_seconds if config is not None else DEFAULT_CAPACITY_WAIT_S


def max_wait_exceeded(record: dict[str, Any], now: float) -> bool:
    """A spot job's wall time since CreateTrainingJob passed its MaxWaitTimeInSeconds."""
    limit = record["StoppingCondition"].get("MaxWaitTimeInSeconds")
    return is_spot(record) and limit is not None and clock.aws_seconds(now - record["CreationTime"]) > float(limit)
