"""Instance quotas of the local SageMaker: ``ResourceLimitExceeded`` past a configured quota, from ``[chaos.quota]``.

Switch (``$LOCAL_RUNTIME_HOME/config.toml``, see ``local_aws/chaos.py``; re-read on every call)::

    [chaos.quota.training]     # "<type> for training job usage": CreateTrainingJob, CreateHyperParameterTuningJob
    "ml.m5.large" = 1
    [chaos.quota.endpoint]     # "<type> for endpoint usage": CreateEndpoint, UpdateEndpoint,
    "ml.m5.large" = 2          # UpdateEndpointWeightsAndCapacities

An instance type with no entry has no local quota. A request is refused when the instances in use of that type plus
the request's delta exceed the quota. In use: the instances of every InProgress or Stopping training job (a tuning
job's included) for training; for endpoints, the instances every endpoint that has not failed holds, its deployed
fleet plus the fleet an update is bringing up. Deltas: a training job's InstanceCount; a tuning job's InstanceCount
times its MaxParallelTrainingJobs (capped by MaxNumberOfTrainingJobs); an endpoint's or an update's whole new
config (blue/green: the new fleet comes up beside the old one); a capacity change's added instances.

The error is the modeled ``ResourceLimitExceeded`` (botocore: member Message; HTTP 400) with the text real accounts
get, e.g. "The account-level service limit 'ml.m4.xlarge for training job usage' is 0 Instances, with current
utilization of 0 Instances and a request delta of 2 Instances. Please use AWS Service Quotas to request an increase
for this quota. If AWS Service Quotas is not available, contact AWS support to request an increase for this quota."
(reported from CreateHyperParameterTuningJob and CreateEndpoint by users of real AWS; older accounts got "Please
contact AWS support to request an increase for this limit.", see amazon-sagemaker-examples#1543).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from local_aws import chaos
from local_aws.sagemaker.errors import SageMakerError
from local_aws.sagemaker.records import RecordStore
from local_aws.sagemaker.validate import service_model

SECTION = "quota"
# quota kind → (the usage named in the quota, botocore's enum of instance types for it)
KINDS = {
    "training": ("training job usage", "TrainingInstanceType"),
    "endpoint": ("endpoint usage", "ProductionVariantInstanceType"),
}
TRAINING_OPERATIONS = frozenset({"CreateTrainingJob", "CreateHyperParameterTuningJob"})
ENDPOINT_OPERATIONS = frozenset({"CreateEndpoint", "UpdateEndpoint", "UpdateEndpointWeightsAndCapacities"})
OPERATIONS = TRAINING_OPERATIONS | ENDPOINT_OPERATIONS
DEFAULT_TRAINING_INSTANCE = "ml.m5.large"  # what CreateTrainingJob records when ResourceConfig leaves it out
ConfigLookup = Callable[[str], dict[str, Any]]


def limit_exceeded(instance_type: str, usage: str, quota: int, current: int, delta: int) -> SageMakerError:
    return SageMakerError(
        "ResourceLimitExceeded",
        f"The account-level service limit '{instance_type} for {usage}' is {quota} Instances, with current "
        f"utilization of {current} Instances and a request delta of {delta} Instances. Please use AWS Service "
        "Quotas to request an increase for this quota. If AWS Service Quotas is not available, contact AWS support "
        "to request an increase for this quota.",
    )


def parse(table: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Validate the section: ``{"training": {type: quota}, "endpoint": {...}}``.

    Raises:
        chaos.ChaosConfigError: an unknown kind or instance type, or a quota that is not an integer >= 0.
    """
    out: dict[str, dict[str, int]] = {}
    for kind, quotas in table.items():
        if kind not in KINDS:
            raise chaos.ChaosConfigError(f"[chaos.{SECTION}] unknown table {kind!r}; valid: {', '.join(KINDS)}")
        if not isinstance(quotas, dict):
            raise chaos.ChaosConfigError(f'[chaos.{SECTION}.{kind}] must be a table of "<instance type>" = <count>')
        valid = service_model().shape_for(KINDS[kind][1]).enum
        for instance_type, quota in quotas.items():
            if instance_type not in valid:
                raise chaos.ChaosConfigError(
                    f"[chaos.{SECTION}.{kind}] {instance_type!r} is not a SageMaker instance type for {kind}; "
                    f"valid: {KINDS[kind][1]} values such as ml.m5.large"
                )
            if isinstance(quota, bool) or not isinstance(quota, int) or quota < 0:
                raise chaos.ChaosConfigError(
                    f"[chaos.{SECTION}.{kind}] {instance_type!r} = {quota!r} is not valid; valid: an integer >= 0"
                )
        out[kind] = dict(quotas)
    return out


def _fleet_usage(config: dict[str, Any]) -> Counter[str]:
    usage: Counter[str] = Counter()
    for variant in config.get("ProductionVariants", []):
        if variant.get("InstanceType"):  # serverless variants hold no instances
            usage[variant["InstanceType"]] += int(variant.get("InitialInstanceCount") or 1)
    return usage


class Quotas:
    """Checks a create or update against the configured instance quotas.

    Args:
        records: the persistent resource records (what is in use).
        endpoint_config: EndpointConfigName → DescribeEndpointConfig answer (raises the service's not-found error).
        home: where ``config.toml`` is.
    """

    def __init__(self, records: RecordStore, endpoint_config: ConfigLookup, home: str | Path | None = None) -> None:
        self.records = records
        self.endpoint_config = endpoint_config
        self.home = home

    def check(self, operation: str, params: dict[str, Any]) -> None:
        """Raise ``ResourceLimitExceeded`` when ``operation`` would pass a quota (callers hold the create lock).

        Raises:
            SageMakerError: ResourceLimitExceeded naming the quota, its value, the usage and the delta.
            chaos.ChaosConfigError: the section is not valid.
        """
        if operation not in OPERATIONS:
            return
        quotas = parse(chaos.section(SECTION, self.home))
        kind = "training" if operation in TRAINING_OPERATIONS else "endpoint"
        limits = quotas.get(kind)
        if not limits:
            return
        delta = self._delta(operation, params)
        if not any(t in limits for t in delta):
            return
        current = self.training_usage() if kind == "training" else self.endpoint_usage()
        for instance_type, wanted in sorted(delta.items()):
            quota = limits.get(instance_type)
            if quota is not None and wanted > 0 and current[instance_type] + wanted > quota:
                raise limit_exceeded(instance_type, KINDS[kind][0], quota, current[instance_type], wanted)

    # ----------------------------------------------------------------------------------------------- usage
    def training_usage(self) -> Counter[str]:
        usage: Counter[str] = Counter()
        for job in self.records.all("training-jobs"):
            if job.get("TrainingJobStatus") in ("InProgress", "Stopping"):
                resource = job.get("ResourceConfig") or {}
                usage[resource.get("InstanceType", DEFAULT_TRAINING_INSTANCE)] += int(resource.get("InstanceCount", 1))
        return usage

    def endpoint_usage(self) -> Counter[str]:
        usage: Counter[str] = Counter()
        for endpoint in self.records.all("endpoints"):
            if endpoint.get("EndpointStatus") == "Failed":
                continue
            for key in ("_deployed", "_pending"):
                snapshot = endpoint.get(key)
                if snapshot:
                    usage.update(_fleet_usage(snapshot["config"]))
        return usage

    # ----------------------------------------------------------------------------------------------- deltas
    def _delta(self, operation: str, params: dict[str, Any]) -> Counter[str]:
        if operation == "CreateTrainingJob":
            return self._training_delta(params.get("ResourceConfig") or {}, 1)
        if operation == "CreateHyperParameterTuningJob":
            limits = (params.get("HyperParameterTuningJobConfig") or {}).get("ResourceLimits") or {}
            parallel = int(limits.get("MaxParallelTrainingJobs") or 1)
            parallel = min(parallel, int(limits.get("MaxNumberOfTrainingJobs") or parallel))
            definitions: Iterable[dict[str, Any]] = (
                [params["TrainingJobDefinition"]]
                if params.get("TrainingJobDefinition")
                else params.get("TrainingJobDefinitions") or []
            )
            delta: Counter[str] = Counter()
            for definition in definitions:
                delta.update(self._training_delta(definition.get("ResourceConfig") or {}, parallel))
            return delta
        if operation in ("CreateEndpoint", "UpdateEndpoint"):
            return _fleet_usage(self.endpoint_config(params["EndpointConfigName"]))
        return self._capacity_delta(params)

    @staticmethod
    def _training_delta(resource: dict[str, Any], jobs: int) -> Counter[str]:
        count = int(resource.get("InstanceCount", 1))
        return Counter({resource.get("InstanceType", DEFAULT_TRAINING_INSTANCE): count * jobs})

    def _capacity_delta(self, params: dict[str, Any]) -> Counter[str]:
        """UpdateEndpointWeightsAndCapacities: the instances each variant adds to what it has deployed."""
        endpoint = self.records.get("endpoints", params["EndpointName"]) or {}
        deployed = (endpoint.get("_deployed") or {}).get("config", {}).get("ProductionVariants", [])
        by_name = {v["VariantName"]: v for v in deployed}
        delta: Counter[str] = Counter()
        for change in params.get("DesiredWeightsAndCapacities", []):
            variant = by_name.get(change["VariantName"])
            if variant is None or change.get("DesiredInstanceCount") is None or not variant.get("InstanceType"):
                continue  # the operation itself refuses an unknown variant
            added = int(change["DesiredInstanceCount"]) - int(variant.get("InitialInstanceCount") or 1)
            if added > 0:
                delta[variant["InstanceType"]] += added
        return delta
