"""CreateEndpoint / UpdateEndpoint / UpdateEndpointWeightsAndCapacities / DeleteEndpoint / Describe / List.

An endpoint deploys a *snapshot* of its config and models and runs a ``Fleet`` of instance processes. Updates are
blue/green: the new fleet starts and passes its health checks while the old one serves; then traffic moves and the
old fleet finishes its in-flight requests before it stops, so no request is dropped. A failed update rolls back
(the old fleet keeps serving, status back to InService), as SageMaker does.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from local_aws.constants import FAILURE_REASON_MAX_CHARS
from local_aws.sagemaker.errors import arn, endpoint_not_found, no_instance, validation
from local_aws.sagemaker.fleet import DeployError, Fleet, Instance, Launcher, instance_count
from local_aws.sagemaker.listing import filter_records, page
from local_aws.sagemaker.models import Models, primary_container
from local_aws.sagemaker.records import RecordStore

LOGGER = logging.getLogger("local_aws.sagemaker")
DRAIN_TIMEOUT_S = 90.0


class Endpoints:
    """The endpoint operations and the fleets that serve them."""

    def __init__(self, records: RecordStore, models: Models, launcher: Launcher) -> None:
        self.records = records
        self.models = models
        self.launcher = launcher
        self._lock = threading.RLock()
        self.changed = threading.Condition(self._lock)
        self._fleets: dict[str, Fleet] = {}
        self._threads: list[threading.Thread] = []

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
            self.records.put("endpoints", name, record)
        self._spawn(self._deploy, name, snapshot, False)
        return {"EndpointArn": endpoint_arn}

    def describe_endpoint(self, name: str) -> dict[str, Any]:
        out = self._record(name)  # ControlPlane.call drops the "_" keys
        with self._lock:
            fleet = self._fleets.get(name)
            if fleet is not None and "ProductionVariants" in out:
                for variant in out["ProductionVariants"]:
                    variant["CurrentInstanceCount"] = fleet.count(variant["VariantName"])
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
            self._set(name, EndpointStatus="Updating", _pending=snapshot)
        self._spawn(self._deploy, name, snapshot, True)
        return {"EndpointArn": record["EndpointArn"]}

    def update_weights_and_capacities(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointName"]
        with self._lock:
            record = self._record(name)
            self._check_updatable(record)
            known = {v["VariantName"] for v in record.get("ProductionVariants", [])}
            for desired in params["DesiredWeightsAndCapacities"]:
                if desired["VariantName"] not in known:
                    raise validation(
                        f'The variant(s) "[{desired["VariantName"]}]" is/are not present in the endpoint '
                        f'"{record["EndpointArn"]}".'
                    )
            self._set(name, EndpointStatus="Updating")
        self._spawn(self._rescale, name, params["DesiredWeightsAndCapacities"])
        return {"EndpointArn": record["EndpointArn"]}

    def delete_endpoint(self, name: str) -> dict[str, Any]:
        with self._lock:
            self._record(name)
            self._set(name, EndpointStatus="Deleting")
            fleet = self._fleets.pop(name, None)
        if fleet is not None:
            self._drain_and_stop(fleet.instances)
        self.records.delete("endpoints", name)
        return {}

    # ----------------------------------------------------------------------------------------------- runtime side
    def acquire(self, name: str, variant: str | None) -> Instance:
        """An instance for one invocation (its in-flight count raised); ``release`` it afterwards.

        Raises:
            RuntimeApiError: no such endpoint (ValidationError), or it has no instance yet (ServiceUnavailable).
        """
        with self._lock:
            fleet = self._fleets.get(name)
            if fleet is None:
                record = self.records.get("endpoints", name)
                if record is None or record["EndpointStatus"] in ("Creating", "Failed"):
                    raise endpoint_not_found(name)
                raise no_instance(name, record["EndpointStatus"])
            instance = fleet.pick(variant)
            instance.inflight += 1
            return instance

    def release(self, instance: Instance) -> None:
        with self.changed:
            instance.inflight -= 1
            self.changed.notify_all()

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

    @staticmethod
    def _variants_view(snapshot: dict[str, Any], fleet: Fleet | None) -> list[dict[str, Any]]:
        out = []
        for variant in snapshot["config"]["ProductionVariants"]:
            image = primary_container(snapshot["models"][variant["ModelName"]]).get("Image", "local")
            weight = float(variant.get("InitialVariantWeight", 1.0))
            out.append(
                {
                    "VariantName": variant["VariantName"],
                    "DeployedImages": [
                        {"SpecifiedImage": image, "ResolvedImage": image, "ResolutionTime": time.time()}
                    ],
                    "CurrentWeight": weight,
                    "DesiredWeight": weight,
                    "CurrentInstanceCount": fleet.count(variant["VariantName"]) if fleet else 0,
                    "DesiredInstanceCount": instance_count(variant),
                }
            )
        return out

    # ----------------------------------------------------------------------------------------------- deployments
    def _deploy(self, name: str, snapshot: dict[str, Any], update: bool) -> None:
        try:
            fleet = self.launcher.start_fleet(name, snapshot)
        except DeployError as exc:
            if self.launcher.closing.is_set():
                return  # the server is stopping: keep the record as is, the next server redeploys it
            reason = str(exc)[:FAILURE_REASON_MAX_CHARS]
            if update:
                LOGGER.warning("endpoint %s update failed, keeping the current deployment: %s", name, exc)
                self._set(name, EndpointStatus="InService", FailureReason=reason, _pending=None)
            else:
                LOGGER.warning("endpoint %s failed: %s", name, exc)
                self._set(name, EndpointStatus="Failed", FailureReason=reason, _pending=None)
            return
        with self._lock:
            if self.launcher.closing.is_set() or self.records.get("endpoints", name) is None:
                retired: Fleet | None = fleet
            else:
                retired = self._fleets.get(name)
                self._fleets[name] = fleet
                self._set(
                    name,
                    EndpointStatus="InService",
                    EndpointConfigName=snapshot["config"]["EndpointConfigName"],
                    ProductionVariants=self._variants_view(snapshot, fleet),
                    FailureReason=None,
                    _deployed=snapshot,
                    _pending=None,
                )
        if retired is not None:
            self._drain_and_stop(retired.instances)

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
            self._set(name, EndpointStatus="InService", FailureReason=str(exc)[:FAILURE_REASON_MAX_CHARS])
            return
        with self._lock:
            instances = [i for i in fleet.instances if i not in removed] + added
            new_fleet = Fleet.serving(instances, snapshot["config"]["ProductionVariants"])
            self._fleets[name] = new_fleet
            self._set(
                name,
                EndpointStatus="InService",
                ProductionVariants=self._variants_view(snapshot, new_fleet),
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
            self._set(name, EndpointStatus=initial, _pending=snapshot)
            self._spawn(self._deploy, name, snapshot, False)

    def shutdown(self) -> None:
        """Stop every instance of every endpoint (state stays persisted for the next server)."""
        with self._lock:
            self.launcher.closing.set()
            fleets = list(self._fleets.values())
            self._fleets.clear()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)
        for fleet in fleets:
            self._drain_and_stop(fleet.instances)
