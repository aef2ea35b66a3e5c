"""How many model workers an instance runs and how it batches: the container's environment, read as the SageMaker
PyTorch inference toolkit renders it into TorchServe's configuration (aws-failure-behaviours.md §10).

- ``SAGEMAKER_MODEL_SERVER_WORKERS`` becomes TorchServe's ``default_workers_per_model`` [PTI-env]; unset, the toolkit
  omits it and TorchServe's own default applies: "available GPUs in system or number of logical processors available
  to the JVM" (pytorch/serve docs/configuration.md, ``default_workers_per_model``). Locally it is the logical CPUs
  only: counting GPUs would mean importing torch in the frontend, and the local instances are CPU instances.
- ``SAGEMAKER_TS_BATCH_SIZE`` (1), ``SAGEMAKER_TS_MAX_BATCH_DELAY`` (100 ms), ``SAGEMAKER_TS_MIN_WORKERS`` (1),
  ``SAGEMAKER_TS_MAX_WORKERS`` (1), ``SAGEMAKER_TS_RESPONSE_TIMEOUT`` (60 s) take effect only when at least one is
  set; the toolkit then writes a ``models=`` entry for model ``model`` [PTI-tsenv][PTI-ts], and TorchServe starts
  that model with ``minWorkers`` workers. So setting only a batch size gives ONE worker, as on SageMaker.
- ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` (60 s) is ``default_response_timeout`` [PTI-env].
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

TS_KNOBS = (
    "SAGEMAKER_TS_BATCH_SIZE",
    "SAGEMAKER_TS_MAX_BATCH_DELAY",
    "SAGEMAKER_TS_MIN_WORKERS",
    "SAGEMAKER_TS_MAX_WORKERS",
    "SAGEMAKER_TS_RESPONSE_TIMEOUT",
)


@dataclass(frozen=True)
class ServingConfig:
    """The model's TorchServe settings: ``workers`` processes, batches of up to ``batch_size`` requests gathered for
    at most ``max_batch_delay_ms``, a worker that answers no batch within ``response_timeout_s`` is restarted."""

    workers: int
    batch_size: int = 1
    max_batch_delay_ms: int = 100
    response_timeout_s: int = 60


def logical_cpus() -> int:
    """The processors this process may run on (what the JVM's availableProcessors reports in a container)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _positive(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {raw!r}")
    return value


def serving_config(env: Mapping[str, str], cpus: int | None = None) -> ServingConfig:
    """The settings ``env`` (a model's container environment) asks for.

    Raises:
        ValueError: a knob that is not a positive integer (naming it and the value); the instance then fails to
            start with that reason, as a container whose model server cannot start does.
    """
    default_workers = _positive(env, "SAGEMAKER_MODEL_SERVER_WORKERS", cpus or logical_cpus())
    timeout = _positive(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", 60)
    if not any(env.get(name, "").strip() for name in TS_KNOBS):
        return ServingConfig(workers=default_workers, response_timeout_s=timeout)
    min_workers = _positive(env, "SAGEMAKER_TS_MIN_WORKERS", 1)
    max_workers = _positive(env, "SAGEMAKER_TS_MAX_WORKERS", 1)
    if max_workers < min_workers:
        raise ValueError(f"SAGEMAKER_TS_MAX_WORKERS ({max_workers}) is below SAGEMAKER_TS_MIN_WORKERS ({min_workers})")
    return ServingConfig(
        workers=min_workers,
        batch_size=_positive(env, "SAGEMAKER_TS_BATCH_SIZE", 1),
        max_batch_delay_ms=_positive(env, "SAGEMAKER_TS_MAX_BATCH_DELAY", 100, minimum=0),
        response_timeout_s=_positive(env, "SAGEMAKER_TS_RESPONSE_TIMEOUT", 60),
    )
