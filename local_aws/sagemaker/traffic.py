"""Which instance serves a request: the endpoint's serving (blue) fleet, or during a blue/green deployment the green
fleet for its current share of the requests; in-flight counts for draining; each request in the variant's metrics."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from local_aws.sagemaker.errors import RuntimeApiError
from local_aws.sagemaker.fleet import Fleet, Instance
from local_aws.sagemaker.metrics import InvocationMetrics


class Traffic:
    """The fleets of every endpoint of a server, guarded by the endpoints' lock."""

    def __init__(self, lock: threading.RLock, metrics: InvocationMetrics) -> None:
        self._lock = lock
        self.changed = threading.Condition(lock)
        self.metrics = metrics
        self.blue: dict[str, Fleet] = {}
        # A blue/green deployment under way: the green fleet and the share of the requests it gets.
        self.green: dict[str, tuple[Fleet, float]] = {}

    def acquire(self, name: str, variant: str | None, unavailable: Callable[[str], RuntimeApiError]) -> Instance:
        """An instance for one invocation (its in-flight count raised); ``release`` it afterwards.

        Raises:
            RuntimeApiError: ``unavailable(name)`` when the endpoint has no fleet, or the fleet's own refusal (an
                unknown target variant, no healthy instance).
        """
        with self._lock:
            fleet = self.blue.get(name)
            green = self.green.get(name)
            if green is not None and green[1] > 0 and (green[1] >= 1.0 or random.random() < green[1]):
                fleet = green[0]
            if fleet is None:
                raise unavailable(name)
            try:
                instance = fleet.pick(variant)
            except RuntimeApiError as exc:
                names = [variant] if variant in fleet.weights else list(fleet.weights)
                if exc.status == 503 and len(names) == 1:  # no healthy instance: an error of that variant
                    self.metrics.record(name, names[0], 0, 503, None, 0.0)
                raise
            instance.inflight += 1
            return instance

    def release(self, instance: Instance) -> None:
        with self.changed:
            instance.inflight -= 1
            self.changed.notify_all()

    def record(self, name: str, instance: Instance, status: int, model_us: float | None, overhead_us: float) -> None:
        """Count one invocation in the variant's CloudWatch metrics (status: what the model answered, 0 for none)."""
        with self._lock:
            fleet = self.blue.get(name)
            green = self.green.get(name)
            if green is not None and instance in green[0].instances:
                fleet = green[0]
            instances = fleet.count(instance.variant) if fleet is not None else 1
        self.metrics.record(name, instance.variant, instances, status, model_us, overhead_us)

    def shift(self, name: str, green: Fleet, share: float) -> None:
        """Send ``share`` of the endpoint's requests to ``green`` (while its deployment is under way)."""
        with self._lock:
            current = self.green.get(name)
            if share == 0.0 or (current is not None and current[0] is green):
                self.green[name] = (green, share)

    def all_fleets(self) -> list[tuple[str, Fleet]]:
        with self._lock:
            return [*self.blue.items(), *((n, g[0]) for n, g in self.green.items())]
