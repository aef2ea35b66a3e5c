"""Instance supervision: health-check every serving instance, take the unhealthy out of routing, replace them.

SageMaker pings each container's ``GET /ping`` with a 2 s timeout (sagemaker-contract.md §3) and launches new
containers when "replacing unhealthy instances" (docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-
code.html). How often it pings and after how many failures it replaces are not documented (aws-failure-behaviours.md
§4: UNCONFIRMED), so the local values are the usual load-balancer ones: a check every ``CHECK_INTERVAL_S`` and
replacement after ``FAILURE_THRESHOLD`` consecutive failed pings. A process that has exited is unhealthy at once
(no ping can pass), and so is one that refused a request's connection (``Instance.healthy`` set by the router).

The endpoint keeps its status (InService) through a replacement; its CurrentInstanceCount is the instances in
service, so DescribeEndpoint shows the gap until the replacement passes its own start-up health check.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from local_aws.sagemaker.fleet import DeployError, Fleet, Instance, Launcher

LOGGER = logging.getLogger("local_aws.sagemaker")
CHECK_INTERVAL_S = 1.0  # real seconds: health checks do not stretch with LOCAL_AWS_TIME_SCALE
FAILURE_THRESHOLD = 3

FleetsOf = Callable[[], list[tuple[str, Fleet]]]


class HealthMonitor:
    """One thread for every endpoint of a server: health checks, replacements, and a periodic ``tick``."""

    def __init__(self, launcher: Launcher, lock: threading.RLock, fleets: FleetsOf, tick: Callable[[], None]) -> None:
        self.launcher = launcher
        self._lock = lock
        self._fleets = fleets
        self._tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="endpoint-health")
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(CHECK_INTERVAL_S):
            for name, fleet in self._fleets():
                try:
                    self.check(name, fleet)
                except Exception:  # one endpoint's trouble must not stop the others' supervision
                    LOGGER.exception("health check of endpoint %s failed", name)
            try:
                self._tick()
            except Exception:
                LOGGER.exception("endpoint monitor tick failed")

    # ----------------------------------------------------------------------------------------------- one round
    def check(self, name: str, fleet: Fleet) -> None:
        """Ping every instance once; retire the unhealthy ones and start replacements up to ``fleet.desired``."""
        for instance in list(fleet.instances):
            if not instance.healthy:
                continue
            code = instance.proc.poll()
            if code is not None:
                LOGGER.warning("endpoint %s: instance on port %s exited (%s); replacing it", name, instance.port, code)
                instance.healthy = False
            elif self.launcher.ping(instance):
                instance.failed_pings = 0
            else:
                instance.failed_pings += 1
                if instance.failed_pings >= FAILURE_THRESHOLD:
                    LOGGER.warning(
                        "endpoint %s: instance on port %s failed %d pings; replacing it",
                        name,
                        instance.port,
                        instance.failed_pings,
                    )
                    instance.healthy = False
        with self._lock:
            if fleet.retired:
                return
            down = [i for i in fleet.instances if not i.healthy]
            fleet.instances[:] = [i for i in fleet.instances if i.healthy]
            missing = {
                variant: want
                - sum(1 for i in fleet.instances if i.variant == variant)
                - sum(1 for i in fleet.starting if i.variant == variant)
                for variant, want in fleet.desired.items()
            }
        if down:
            # NOTE: a hung process may hold requests: SIGTERM, then SIGKILL after the grace period, off this thread.
            threading.Thread(target=self.launcher.stop_all, args=(down,), daemon=True, name=f"retire-{name}").start()
        for variant, count in missing.items():
            for _ in range(max(0, count)):
                self._replace(name, fleet, variant)

    def _replace(self, name: str, fleet: Fleet, variant_name: str) -> None:
        variant = fleet.variant(variant_name)
        try:
            model_dir = self.launcher.model_dir(name, fleet.snapshot, variant)
            instance = self.launcher.start(name, fleet.snapshot, variant, model_dir)
        except (DeployError, OSError) as exc:
            LOGGER.warning("endpoint %s: could not start a replacement for %s: %s", name, variant_name, exc)
            return
        with self._lock:
            fleet.starting.append(instance)
        threading.Thread(target=self._await, args=(name, fleet, instance), daemon=True, name=f"replace-{name}").start()

    def _await(self, name: str, fleet: Fleet, instance: Instance) -> None:
        try:
            self.launcher.wait_healthy(
                [instance], self.launcher.startup_timeout(fleet.variant(instance.variant)), instance.variant
            )
        except DeployError as exc:
            # A server shutting down (or an endpoint being deleted) stops the replacement it was waiting for; that is
            # not the replacement failing.
            if not (fleet.retired or self._stop.is_set()):
                LOGGER.warning("endpoint %s: replacement instance failed its health check: %s", name, exc)
            healthy = False
        else:
            healthy = True
        with self._lock:
            fleet.starting.remove(instance)
            keep = healthy and not fleet.retired
            if keep:
                fleet.instances.append(instance)
        if keep:
            LOGGER.info("endpoint %s: replacement instance on port %s is in service", name, instance.port)
        else:
            self.launcher.stop_all([instance])
