"""An endpoint's instances: one model-server process each, started, health-checked, routed to and stopped.

An instance is ``python -m local_aws.sagemaker.container`` on its own port, serving the extracted ``model.tar.gz``
under the inference container contract (``GET /ping``, ``POST /invocations``). Processes are started through the
runtime's supervisor, so they die with the runtime.
"""

from __future__ import annotations

import http.client
import logging
import os
import random
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_aws.constants import HOST, REPO_ROOT
from local_aws.processes import ProcessSupervisor
from local_aws.s3.store import ObjectStore, S3Error, parse_uri
from local_aws.sagemaker.container import LOAD_FAILED_MARKER
from local_aws.sagemaker.errors import RuntimeApiError
from local_aws.sagemaker.models import primary_container
from local_aws.sagemaker.training.runner import free_port

LOGGER = logging.getLogger("local_aws.sagemaker")
# NOTE: SageMaker fails CreateEndpoint when /ping has not passed within 4 minutes (sagemaker-contract.md §3);
# ContainerStartupHealthCheckTimeoutInSeconds or LOCAL_SAGEMAKER_STARTUP_TIMEOUT override it.
DEFAULT_STARTUP_TIMEOUT_S = 240.0
# SageMaker sends SIGTERM, then SIGKILL after 30 s, when it stops a container (sagemaker-contract.md §3).
STOP_GRACE_S = 30.0
PING_TIMEOUT_S = 2.0


class DeployError(Exception):
    """A deployment that did not become healthy; the message becomes FailureReason."""


def instance_count(variant: dict[str, Any]) -> int:
    """How many instances a production variant runs: its InitialInstanceCount (1 when unset).

    NOTE: 0 is a count, not "unset": DesiredWeightAndCapacity.DesiredInstanceCount is a TaskCount, min 0, in
    botocore's sagemaker model, so UpdateEndpointWeightsAndCapacities may scale a variant to zero instances.
    """
    value = variant.get("InitialInstanceCount")
    return 1 if value is None else int(value)


@dataclass(eq=False)
class Instance:
    """One endpoint instance: a model-server process on its own port.

    ``healthy`` is what the load balancer believes: False from the first failed health check on, so no request is
    routed to it while it waits to be replaced.
    """

    variant: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    inflight: int = 0
    healthy: bool = True
    failed_pings: int = 0

    def log_tail(self, lines: int = 40) -> list[str]:
        try:
            return self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return []


@dataclass(eq=False)
class Fleet:
    """The instances serving one deployment, with per-variant weights and least-loaded round-robin routing.

    ``desired`` is each variant's instance count: the health monitor replaces instances until that many are healthy.
    """

    instances: list[Instance]
    weights: dict[str, float]
    snapshot: dict[str, Any]
    desired: dict[str, int] = field(default_factory=dict)
    starting: list[Instance] = field(default_factory=list)
    retired: bool = False
    _next: dict[str, int] = field(default_factory=dict)

    @classmethod
    def serving(cls, instances: list[Instance], snapshot: dict[str, Any]) -> Fleet:
        """The fleet of ``instances``, weighted by the variants' InitialVariantWeight (1.0 when unset)."""
        variants = snapshot["config"]["ProductionVariants"]
        return cls(
            instances,
            {v["VariantName"]: float(v.get("InitialVariantWeight", 1.0)) for v in variants},
            snapshot,
            {v["VariantName"]: instance_count(v) for v in variants},
        )

    def variant(self, name: str) -> dict[str, Any]:
        return next(v for v in self.snapshot["config"]["ProductionVariants"] if v["VariantName"] == name)

    def count(self, variant: str) -> int:
        """The variant's CurrentInstanceCount: its instances in service (healthy)."""
        return sum(1 for i in self.instances if i.variant == variant and i.healthy)

    def pick(self, variant: str | None) -> Instance:
        """The instance for the next request (``variant`` from X-Amzn-SageMaker-Target-Variant, when given).

        Raises:
            RuntimeApiError: an unknown target variant (ValidationError), or no healthy instance to route to.
        """
        if variant is not None:
            if variant not in self.weights:
                raise RuntimeApiError("ValidationError", f"Variant {variant} not found for this endpoint.", 400)
            chosen = variant
        else:
            names = [v for v in self.weights if self.count(v)]
            if not names:
                raise no_healthy_instance()
            weights = [max(self.weights[v], 0.0) for v in names]
            chosen = random.choices(names, weights=weights)[0] if sum(weights) > 0 else names[0]
        candidates = [i for i in self.instances if i.variant == chosen and i.healthy]
        if not candidates:
            raise no_healthy_instance()
        index = self._next.get(chosen, 0) % len(candidates)
        self._next[chosen] = index + 1
        # Round robin, but skip a busy instance when an idle one exists (TorchServe queues per worker).
        ordered = candidates[index:] + candidates[:index]
        return min(ordered, key=lambda i: i.inflight)


def no_healthy_instance() -> RuntimeApiError:
    """What a request gets while every instance it could go to is down and being replaced.

    NOTE: SageMaker's load balancer has no instance to send it to, so no container answers: botocore's
    sagemaker-runtime model has ``ServiceUnavailable`` (HTTP 503, "The service is unavailable. Try your call
    again.") for that, and botocore's standard retry mode retries a 503, so a client rides out the replacement.
    Which of 503 and a 424 with status 0 AWS sends here is UNCONFIRMED (aws-failure-behaviours.md §4).
    """
    return RuntimeApiError("ServiceUnavailable", "The service is unavailable. Try your call again.", 503)


def ping_port(port: int, timeout: float = PING_TIMEOUT_S) -> bool:
    """SageMaker's health check of a model server: ``GET /ping`` answers 200 within ``timeout``."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", "/ping")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


class Launcher:
    """Starts, checks and stops instances for the endpoints of one server."""

    def __init__(
        self, endpoints_dir: Path, logs_dir: Path, objects: ObjectStore, supervisor: ProcessSupervisor
    ) -> None:
        self.endpoints_dir = endpoints_dir
        self.logs_dir = logs_dir
        self.objects = objects
        self.supervisor = supervisor
        self.closing = threading.Event()

    def model_dir(self, endpoint: str, snapshot: dict[str, Any], variant: dict[str, Any]) -> Path:
        """The variant's model.tar.gz, extracted once per deployment (``/opt/ml/model`` of its instances)."""
        container = primary_container(snapshot["models"][variant["ModelName"]])
        target = self.endpoints_dir / endpoint / snapshot["id"] / variant["VariantName"] / "model"
        if (target.parent / ".extracted").exists():
            return target
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        url = container.get("ModelDataUrl")
        if url:
            try:
                bucket, key = parse_uri(url)
                source = self.objects.object_path(bucket, key)
            except S3Error as exc:
                raise DeployError(
                    f"Failed to download model data from {url} for production variant {variant['VariantName']}: "
                    f"{exc.message}"
                ) from exc
            try:
                with tarfile.open(source) as tar:
                    tar.extractall(target, filter="data")
            except (tarfile.TarError, OSError) as exc:
                raise DeployError(f"Failed to extract model data from {url}: {exc}") from exc
        (target.parent / ".extracted").touch()
        return target

    @staticmethod
    def startup_timeout(variant: dict[str, Any]) -> float:
        override = os.environ.get("LOCAL_SAGEMAKER_STARTUP_TIMEOUT")
        if override:
            return float(override)
        return float(variant.get("ContainerStartupHealthCheckTimeoutInSeconds") or DEFAULT_STARTUP_TIMEOUT_S)

    def start(self, endpoint: str, snapshot: dict[str, Any], variant: dict[str, Any], model_dir: Path) -> Instance:
        """Start one instance process of ``variant`` (not yet healthy)."""
        container = primary_container(snapshot["models"][variant["ModelName"]])
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "AWS_"))}
        env.update(container.get("Environment") or {})
        env.update(
            {
                "SAGEMAKER_BIND_TO_PORT": str(port),
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p),
            }
        )
        env.setdefault("OMP_NUM_THREADS", "1")
        log_dir = self.logs_dir / endpoint
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / f"{variant['VariantName']}-{snapshot['id']}-{uuid.uuid4().hex[:6]}.log"
        with open(log, "wb") as out:
            proc = self.supervisor.spawn(
                [
                    sys.executable,
                    "-m",
                    "local_aws.sagemaker.container",
                    "--model-dir",
                    str(model_dir),
                    "--port",
                    str(port),
                ],
                cwd=model_dir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                owner=f"endpoint/{endpoint}",
                kind="endpoint-instance",
            )
        return Instance(variant["VariantName"], proc, port, log)

    def start_variant(
        self, endpoint: str, snapshot: dict[str, Any], variant: dict[str, Any], count: int
    ) -> Iterator[Instance]:
        """Start ``count`` instances of ``variant`` (not yet healthy), extracting its model first; yields each.

        NOTE: a generator, so that ``instances.extend(start_variant(...))`` holds every instance started before a
        failure, and the caller can stop them.
        """
        model_dir = self.model_dir(endpoint, snapshot, variant)
        for _ in range(count):
            yield self.start(endpoint, snapshot, variant, model_dir)

    def start_fleet(self, endpoint: str, snapshot: dict[str, Any]) -> Fleet:
        """Start and health-check every instance of a deployment; on failure stop them all and raise DeployError."""
        instances: list[Instance] = []
        variants = snapshot["config"]["ProductionVariants"]
        try:
            for variant in variants:
                instances.extend(self.start_variant(endpoint, snapshot, variant, instance_count(variant)))
            for variant in variants:
                mine = [i for i in instances if i.variant == variant["VariantName"]]
                self.wait_healthy(mine, self.startup_timeout(variant), variant["VariantName"])
        except BaseException:
            self.stop_all(instances)
            raise
        return Fleet.serving(instances, snapshot)

    def wait_healthy(self, instances: list[Instance], timeout: float, variant: str) -> None:
        deadline = time.monotonic() + timeout
        pending = list(instances)
        while pending:
            for instance in list(pending):
                code = instance.proc.poll()
                if code is not None:
                    tail = instance.log_tail()
                    reason = next(
                        (
                            line[len(LOAD_FAILED_MARKER) :]
                            for line in reversed(tail)
                            if line.startswith(LOAD_FAILED_MARKER)
                        ),
                        None,
                    )
                    reason = reason or (tail[-1] if tail else f"exit code {code}")
                    raise DeployError(
                        f"The primary container for production variant {variant} did not pass the ping health check: "
                        f"the model server exited with code {code} ({reason}). See {instance.log} for the log."
                    )
                if self.ping(instance):
                    pending.remove(instance)
            if not pending:
                return
            if time.monotonic() > deadline or self.closing.is_set():
                raise DeployError(
                    f"The primary container for production variant {variant} did not pass the ping health check "
                    f"within {timeout:g} seconds. See {pending[0].log} for the log."
                )
            time.sleep(0.2)

    @staticmethod
    def ping(instance: Instance) -> bool:
        return ping_port(instance.port)

    def stop_all(self, instances: list[Instance]) -> None:
        """SIGTERM, then SIGKILL after the grace period, for every instance in parallel."""
        grace = float(os.environ.get("LOCAL_SAGEMAKER_STOP_GRACE", STOP_GRACE_S))
        self.supervisor.stop_many([i.proc for i in instances], grace)
