"""CreateEndpoint / UpdateEndpoint / UpdateEndpointWeightsAndCapacities / DeleteEndpoint / Describe / List.

An endpoint deploys a *snapshot* of its config and models and runs a ``Fleet`` of instance processes, one per
instance of each variant; ``health.py`` replaces an instance that dies or stops answering ``/ping``. Updates are
blue/green (``bluegreen.py``): the green fleet starts and passes its health checks while blue serves; then traffic
shifts (all at once, canary or linear) and bakes while the rollback alarms are watched; blue finishes its in-flight
requests before it stops, so no request is dropped. A failed or alarmed update rolls back (blue keeps serving, the
endpoint InService on its old config with a FailureReason), as SageMaker does. Every invocation counts in the
variant's CloudWatch metrics (``metrics.py``).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from local_aws import clock
from local_aws.constants import FAILURE_REASON_MAX_CHARS
from local_aws.sagemaker import metrics
from local_aws.sagemaker.bluegreen import Bake, Plan, RolledBack, plan
from local_aws.sagemaker.endpoint_views import retain_variant_properties, variants_view
from local_aws.sagemaker.errors import RuntimeApiError, arn, endpoint_not_found, no_instance, validation
from local_aws.sagemaker.fleet import DeployError, Fleet, Instance, Launcher, instance_count
from local_aws.sagemaker.health import HealthMonitor
from local_aws.sagemaker.instance_faults import InstanceFaults
from local_aws.sagemaker.listing import filter_records, page
from local_aws.sagemaker.models import Models
from local_aws.sagemaker.records import RecordStore
from local_aws.sagemaker.traffic import Traffic

LOGGER = logging.getLogger("local_aws.sagemaker")
DRAIN_TIMEOUT_S = 90.0


class Endpoints:
    """The endpoint operations and the fleets that serve them."""

    def __init__(
        self,
        records: RecordStore,
        models: Models,
        launcher: Launcher,
        publish: metrics.Publish = metrics.publish_to_moto,
        alarms_in_alarm: Callable[[list[str]], list[str]] = metrics.alarms_in_alarm,
        faults: InstanceFaults | None = None,
    ) -> None:
        self.records = records
        # [chaos.endpoint]: instance failures on demand (instance_faults.py); off unless that section says so.
        self.faults = faults or InstanceFaults()
        self.models = models
        self.launcher = launcher
        self.metrics = metrics.InvocationMetrics(publish)
        self.alarms_in_alarm = alarms_in_alarm
        self._lock = threading.RLock()
        self.traffic = Traffic(self._lock, self.metrics)
        self.changed = self.traffic.changed
        self._fleets = self.traffic.blue
        self._green = self.traffic.green
        self._threads: list[threading.Thread] = []
        self.health = HealthMonitor(launcher, self._lock, self.traffic.all_fleets, self.metrics.flush_due)

    # ----------------------------------------------------------------------------------------------- API
    def create_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointName"]
        endpoint_arn = arn("endpoint", name)
        with self._lock:
            if self.records.get("endpoints", name):
                raise validation(f'Cannot create already existing endpoint "{endpoint_arn}".')
            snapshot = self.models.snapshot(params["EndpointConfigName"])
            now = time.time()
            record: dict[str, Any] = {
                "EndpointName": name,
                "EndpointArn": endpoint_arn,
                "EndpointConfigName": params["EndpointConfigName"],
                "EndpointStatus": "Creating",
                "CreationTime": now,
                "LastModifiedTime": now,
                "_pending": snapshot,
            }
            if params.get("DeploymentConfig"):
                # Kept for a later UpdateEndpoint with RetainDeploymentConfig (a create itself is no blue/green).
                record["LastDeploymentConfig"] = params["DeploymentConfig"]
            self.records.put("endpoints", name, record)
        self.health.start()
        self._spawn(self._deploy, name, snapshot, None)
        return {"EndpointArn": endpoint_arn}

    def describe_endpoint(self, name: str) -> dict[str, Any]:
        out = copy.deepcopy(self._record(name))  # ControlPlane.call drops the "_" keys
        with self._lock:
            fleet = self._fleets.get(name)
            if fleet is not None:
                for variant in out.get("ProductionVariants", []):
                    variant["CurrentInstanceCount"] = fleet.count(variant["VariantName"])
            green = self._green.get(name)
            if green is not None:
                for variant in (out.get("PendingDeploymentSummary") or {}).get("ProductionVariants", []):
                    variant["CurrentInstanceCount"] = green[0].count(variant["VariantName"])
        return out

    def list_endpoints(self, params: dict[str, Any]) -> dict[str, Any]:
        records = filter_records(self.records.all("endpoints"), params, "EndpointName", "EndpointStatus")
        keys = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
        return page([{k: r[k] for k in keys} for r in records], params, "Endpoints", "EndpointName", "EndpointStatus")

    def update_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointName"]
        with self._lock:
            record = self._record(name)
            self._check_updatable(record)
            snapshot = self.models.snapshot(params["EndpointConfigName"])
            if params.get("RetainAllVariantProperties"):
                retain_variant_properties(snapshot, record, params.get("ExcludeRetainedVariantProperties") or [])
            deployment = params.get("DeploymentConfig")
            if deployment is None and params.get("RetainDeploymentConfig"):
                deployment = record.get("LastDeploymentConfig")
            variants = snapshot["config"]["ProductionVariants"]
            steps = plan(deployment, instance_count(variants[0]))  # ValidationException before anything changes
            self._set(
                name,
                EndpointStatus="Updating",
                LastDeploymentConfig=deployment,
                PendingDeploymentSummary={
                    "EndpointConfigName": params["EndpointConfigName"],
                    "ProductionVariants": variants_view(snapshot, None, "Creating"),
                    "StartTime": time.time(),
                },
                _pending=snapshot,
            )
        self._spawn(self._deploy, name, snapshot, steps)
        return {"EndpointArn": record["EndpointArn"]}

    def update_weights_and_capacities(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointName"]
        with self._lock:
            record = self._record(name)
            self._check_updatable(record)
            by_name = {v["VariantName"]: v for v in record.get("ProductionVariants", [])}
            for desired in params["DesiredWeightsAndCapacities"]:
                if desired["VariantName"] not in by_name:
                    raise validation(
                        f'The variant(s) "[{desired["VariantName"]}]" is/are not present in the endpoint '
                        f'"{record["EndpointArn"]}".'
                    )
            # DescribeEndpoint shows the request at once: Desired* differ from Current* until the change is done.
            for desired in params["DesiredWeightsAndCapacities"]:
                view = by_name[desired["VariantName"]]
                if desired.get("DesiredInstanceCount") is not None:
                    view["DesiredInstanceCount"] = int(desired["DesiredInstanceCount"])
                if desired.get("DesiredWeight") is not None:
                    view["DesiredWeight"] = float(desired["DesiredWeight"])
            self._set(name, EndpointStatus="Updating", ProductionVariants=list(by_name.values()))
        self._spawn(self._rescale, name, params["DesiredWeightsAndCapacities"])
        return {"EndpointArn": record["EndpointArn"]}

    def delete_endpoint(self, name: str) -> dict[str, Any]:
        with self._lock:
            self._record(name)
            self._set(name, EndpointStatus="Deleting")
            fleets = [f for f in (self._fleets.pop(name, None), self._green.pop(name, (None, 0.0))[0]) if f]
            for fleet in fleets:
                fleet.retired = True
        for fleet in fleets:
            self._drain_and_stop(fleet.instances)
        self.records.delete("endpoints", name)
        return {}

    # ----------------------------------------------------------------------------------------------- runtime side
    def acquire(self, name: str, variant: str | None) -> Instance:
        """An instance for one invocation (``Traffic.acquire``); ``release`` it afterwards.

        Raises:
            RuntimeApiError: no such endpoint (ValidationError), or no instance in service (ServiceUnavailable).
        """
        return self.traffic.acquire(name, variant, self._unavailable)

    def release(self, instance: Instance) -> None:
        self.traffic.release(instance)

    def record_invocation(
        self, name: str, instance: Instance, status: int, model_us: float | None, overhead_us: float
    ) -> None:
        self.traffic.record(name, instance, status, model_us, overhead_us)

    def _unavailable(self, name: str) -> RuntimeApiError:
        record = self.records.get("endpoints", name)
        if record is None or record["EndpointStatus"] in ("Creating", "Failed"):
            return endpoint_not_found(name)
        return no_instance(name, record["EndpointStatus"])

    # ----------------------------------------------------------------------------------------------- state
    def _record(self, name: str) -> dict[str, Any]:
        record = self.records.get("endpoints", name)
        if record is None:
            raise validation(f'Could not find endpoint "{arn("endpoint", name)}".')
        return record

    @staticmethod
    def _check_updatable(record: dict[str, Any]) -> None:
        status = record["EndpointStatus"]
        if status == "Failed":
            # A Failed endpoint accepts only DeleteEndpoint (botocore's EndpointStatus documentation).
            raise validation(
                f'Cannot update endpoint "{record["EndpointArn"]}" because its status is Failed. '
                "Delete the endpoint and create it again."
            )
        if status != "InService":
            raise validation(f'Cannot update in-progress endpoint "{record["EndpointArn"]}".')

    def _set(self, name: str, **fields: Any) -> dict[str, Any] | None:
        with self._lock:
            record = self.records.get("endpoints", name)
            if record is None:
                return None
            for key, value in fields.items():
                if value is None:
                    record.pop(key, None)
                else:
                    record[key] = value
            record["LastModifiedTime"] = time.time()
            self.records.put("endpoints", name, record)
            return record

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"endpoint-{args[0]}")
        with self._lock:
            # Finished deployments need no join at shutdown: drop them, so the list does not grow with every call.
            # NOTE: started under the lock, so a concurrent _spawn never mistakes it for finished (not yet alive).
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            thread.start()

    # ----------------------------------------------------------------------------------------------- deployments
    def _deploy(self, name: str, snapshot: dict[str, Any], steps: Plan | None) -> None:
        """Create (``steps`` None) or blue/green update: start the new fleet, shift and bake, commit or roll back."""
        started = clock.monotonic()
        try:
            fleet = self.launcher.start_fleet(name, snapshot)
        except DeployError as exc:
            if self.launcher.closing.is_set():
                return  # the server is stopping: keep the record as is, the next server redeploys it
            reason = str(exc)[:FAILURE_REASON_MAX_CHARS]
            if steps is not None:
                LOGGER.warning("endpoint %s update failed, keeping the current deployment: %s", name, exc)
                self._set(
                    name, EndpointStatus="InService", FailureReason=reason, PendingDeploymentSummary=None, _pending=None
                )
            else:
                LOGGER.warning("endpoint %s failed: %s", name, exc)
                self._set(name, EndpointStatus="Failed", FailureReason=reason, _pending=None)
            return
        if steps is not None and not self._bake(name, fleet, steps, started):
            return
        with self._lock:
            self._green.pop(name, None)
            if self.launcher.closing.is_set() or self.records.get("endpoints", name) is None:
                retired: Fleet | None = fleet
            else:
                retired = self._fleets.get(name)
                self._fleets[name] = fleet
                self._set(
                    name,
                    EndpointStatus="InService",
                    EndpointConfigName=snapshot["config"]["EndpointConfigName"],
                    ProductionVariants=variants_view(snapshot, fleet),
                    FailureReason=None,
                    PendingDeploymentSummary=None,
                    _deployed=snapshot,
                    _pending=None,
                )
            if retired is not None:
                retired.retired = True
        if retired is not None:
            self._drain_and_stop(retired.instances)

    def _bake(self, name: str, green: Fleet, steps: Plan, started: float) -> bool:
        """Run the traffic shifting of a blue/green update; False when it rolled back (green is then stopped).

        A rollback sends all traffic back to blue (EndpointStatus ``RollingBack`` while green drains), then the
        endpoint is InService on its old config, with the reason in FailureReason and the DeploymentConfig in
        LastDeploymentConfig, as DescribeEndpoint shows after a guardrail rollback.
        """
        self.traffic.shift(name, green, 0.0)

        def shift(share: float) -> None:
            self.traffic.shift(name, green, share)

        def status(value: str) -> None:
            with self._lock:
                record = self.records.get("endpoints", name)
                pending = (record or {}).get("PendingDeploymentSummary")
                if pending is not None:
                    for variant in pending["ProductionVariants"]:
                        variant["VariantStatus"] = [{"Status": value, "StartTime": time.time()}]
                    self._set(name, PendingDeploymentSummary=pending)

        try:
            Bake(steps, shift, status, self.alarms_in_alarm, self.launcher.closing).run(started)
        except RolledBack as exc:
            LOGGER.warning("endpoint %s: %s", name, exc)
            with self._lock:
                self._green.pop(name, None)
                green.retired = True
                self._set(name, EndpointStatus="RollingBack")
            self._drain_and_stop(green.instances)
            self._set(
                name,
                EndpointStatus="InService",
                FailureReason=str(exc)[:FAILURE_REASON_MAX_CHARS],
                PendingDeploymentSummary=None,
                _pending=None,
            )
            return False
        return True

    def _rescale(self, name: str, desired: list[dict[str, Any]]) -> None:
        record = self.records.get("endpoints", name)
        if record is None:
            return
        snapshot = copy.deepcopy(record["_deployed"])
        by_name = {v["VariantName"]: v for v in snapshot["config"]["ProductionVariants"]}
        for change in desired:
            variant = by_name[change["VariantName"]]
            if change.get("DesiredWeight") is not None:
                variant["InitialVariantWeight"] = float(change["DesiredWeight"])
            if change.get("DesiredInstanceCount") is not None:
                variant["InitialInstanceCount"] = int(change["DesiredInstanceCount"])
        with self._lock:
            fleet = self._fleets.get(name)
        if fleet is None:
            self._set(name, EndpointStatus="InService")
            return
        added: list[Instance] = []
        removed: list[Instance] = []
        try:
            for variant in snapshot["config"]["ProductionVariants"]:
                # The instances serving now keep serving: only the difference is started or stopped.
                current = [i for i in fleet.instances if i.variant == variant["VariantName"]]
                target = instance_count(variant)
                if target > len(current):
                    first = len(added)
                    added.extend(self.launcher.start_variant(name, snapshot, variant, target - len(current)))
                    new = added[first:]
                    self.launcher.wait_healthy(new, self.launcher.startup_timeout(variant), variant["VariantName"])
                elif target < len(current):
                    removed.extend(current[target:])
        except DeployError as exc:
            self.launcher.stop_all(added)
            self._set(
                name,
                EndpointStatus="InService",
                ProductionVariants=variants_view(record["_deployed"], fleet),
                FailureReason=str(exc)[:FAILURE_REASON_MAX_CHARS],
            )
            return
        with self._lock:
            # The same fleet, changed in place: the health monitor keeps supervising it, now to the new counts.
            fleet.instances[:] = [i for i in fleet.instances if i not in removed] + added
            fleet.snapshot = snapshot
            fleet.weights = {v["VariantName"]: float(v.get("InitialVariantWeight", 1.0)) for v in by_name.values()}
            fleet.desired = {v["VariantName"]: instance_count(v) for v in by_name.values()}
            self._set(
                name,
                EndpointStatus="InService",
                ProductionVariants=variants_view(snapshot, fleet),
                FailureReason=None,
                _deployed=snapshot,
            )
        self._drain_and_stop(removed)

    def _drain_and_stop(self, instances: list[Instance]) -> None:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        with self.changed:
            while any(i.inflight for i in instances) and time.monotonic() < deadline:
                self.changed.wait(timeout=0.5)
        self.launcher.stop_all(instances)

    # ----------------------------------------------------------------------------------------------- restart
    def recover(self) -> None:
        """Bring persisted endpoints back from their deployed snapshots (no retraining)."""
        for record in self.records.all("endpoints"):
            name = record["EndpointName"]
            status = record["EndpointStatus"]
            if status == "Deleting":
                self.records.delete("endpoints", name)
                continue
            if status in ("Failed", "OutOfService"):
                continue
            snapshot = record.get("_deployed") or record.get("_pending")
            if snapshot is None:
                self._set(name, EndpointStatus="Failed", FailureReason="The endpoint has no deployment to restore.")
                continue
            # An endpoint that was in service comes back through SystemUpdating (platform maintenance) → InService.
            initial = "SystemUpdating" if record.get("_deployed") else "Creating"
            # NOTE: a deployment the last server did not finish is gone with it (its green fleet was stopped).
            self._set(name, EndpointStatus=initial, PendingDeploymentSummary=None, _pending=snapshot)
            self.health.start()
            self._spawn(self._deploy, name, snapshot, None)

    def shutdown(self) -> None:
        """Stop every instance of every endpoint (state stays persisted for the next server)."""
        with self._lock:
            self.launcher.closing.set()
            fleets = [*self._fleets.values(), *(g[0] for g in self._green.values())]
            self._fleets.clear()
            self._green.clear()
            for fleet in fleets:
                fleet.retired = True
            threads = list(self._threads)
        self.health.stop()
        for thread in threads:
            thread.join(timeout=5)
        for fleet in fleets:
            self._drain_and_stop(fleet.instances)
