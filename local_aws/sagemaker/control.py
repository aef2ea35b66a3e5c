"""The SageMaker control plane: one dispatch table from ``X-Amz-Target`` operation names to the resource managers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local_aws.constants import StateLayout
from local_aws.processes import ProcessSupervisor
from local_aws.s3.store import ObjectStore
from local_aws.sagemaker.endpoints import Endpoints
from local_aws.sagemaker.errors import arn, validation
from local_aws.sagemaker.fleet import Launcher
from local_aws.sagemaker.instance_faults import InstanceFaults
from local_aws.sagemaker.listing import page_slice
from local_aws.sagemaker.models import Models
from local_aws.sagemaker.quota import OPERATIONS as QUOTA_OPERATIONS
from local_aws.sagemaker.quota import Quotas
from local_aws.sagemaker.records import RecordStore
from local_aws.sagemaker.throttle import Throttle
from local_aws.sagemaker.training.hosts import LogWriter
from local_aws.sagemaker.training.jobs import TrainingJobs
from local_aws.sagemaker.training.runner import JobContext
from local_aws.sagemaker.tuning import TuningJobs
from local_aws.sagemaker.validate import validate_input

Operation = Callable[[dict[str, Any]], dict[str, Any]]
# Resource type in an ARN → (record kind, name field).
ARN_KINDS = {
    "training-job": ("training-jobs", "TrainingJobName"),
    "hyper-parameter-tuning-job": ("tuning-jobs", "HyperParameterTuningJobName"),
    "model": ("models", "ModelName"),
    "endpoint-config": ("endpoint-configs", "EndpointConfigName"),
    "endpoint": ("endpoints", "EndpointName"),
}
MAX_TAGS = 50  # "You can add tags ... up to 50 tags per resource" (sagemaker AddTags API reference)


@dataclass(frozen=True)
class SageMakerDeps:
    """What the local SageMaker needs from the runtime that hosts it."""

    layout: StateLayout
    objects: ObjectStore
    supervisor: ProcessSupervisor
    logs: LogWriter
    echo: Callable[[str], None] | None = None


class ControlPlane:
    """Every SageMaker operation the local runtime implements, validated against botocore's model first."""

    def __init__(self, deps: SageMakerDeps) -> None:
        layout = deps.layout
        self.records = RecordStore(layout.sagemaker)
        self.throttle = Throttle(layout.home)
        self.objects = deps.objects
        context = JobContext(
            jobs_dir=layout.jobs,
            cache_dir=layout.cache,
            supervisor=deps.supervisor,
            logs=deps.logs,
            echo=deps.echo,
            home=layout.home,
        )
        self.training = TrainingJobs(self.records, deps.objects, context)
        self.tuning = TuningJobs(self.records, self.training)
        self.models = Models(self.records, deps.objects)
        launcher = Launcher(layout.endpoints, layout.logs / "Endpoints", deps.objects, deps.supervisor)
        self.endpoints = Endpoints(self.records, self.models, launcher, faults=InstanceFaults(layout.home))
        self.quotas = Quotas(self.records, self.models.describe_endpoint_config, layout.home)
        self._quota_lock = threading.Lock()  # a quota check and the create it admits are one step
        t, m, e = self.training, self.models, self.endpoints
        self.operations: dict[str, Operation] = {
            "CreateTrainingJob": self._tagged(t.create, "TrainingJobArn"),
            "DescribeTrainingJob": lambda p: t.describe(p["TrainingJobName"]),
            "StopTrainingJob": lambda p: t.stop(p["TrainingJobName"]),
            "ListTrainingJobs": t.list_jobs,
            "CreateHyperParameterTuningJob": self._tagged(self.tuning.create, "HyperParameterTuningJobArn"),
            "DescribeHyperParameterTuningJob": lambda p: self.tuning.describe(p["HyperParameterTuningJobName"]),
            "StopHyperParameterTuningJob": lambda p: self.tuning.stop(p["HyperParameterTuningJobName"]),
            "ListHyperParameterTuningJobs": self.tuning.list_jobs,
            "ListTrainingJobsForHyperParameterTuningJob": self.tuning.list_training_jobs,
            "CreateModel": self._tagged(m.create_model, "ModelArn"),
            "DescribeModel": lambda p: m.describe_model(p["ModelName"]),
            "DeleteModel": lambda p: self._untag_after(m.delete_model(p["ModelName"]), "model", p["ModelName"]),
            "ListModels": m.list_models,
            "CreateEndpointConfig": self._tagged(m.create_endpoint_config, "EndpointConfigArn"),
            "DescribeEndpointConfig": lambda p: m.describe_endpoint_config(p["EndpointConfigName"]),
            "DeleteEndpointConfig": lambda p: self._untag_after(
                m.delete_endpoint_config(p["EndpointConfigName"]), "endpoint-config", p["EndpointConfigName"]
            ),
            "ListEndpointConfigs": m.list_endpoint_configs,
            "CreateEndpoint": self._tagged(e.create_endpoint, "EndpointArn"),
            "DescribeEndpoint": lambda p: e.describe_endpoint(p["EndpointName"]),
            "DeleteEndpoint": lambda p: self._untag_after(
                e.delete_endpoint(p["EndpointName"]), "endpoint", p["EndpointName"]
            ),
            "UpdateEndpoint": e.update_endpoint,
            "UpdateEndpointWeightsAndCapacities": e.update_weights_and_capacities,
            "ListEndpoints": e.list_endpoints,
            "AddTags": self.add_tags,
            "ListTags": self.list_tags,
            "DeleteTags": self.delete_tags,
        }

    def start(self) -> None:
        """Bring persisted endpoints back into service."""
        self.endpoints.recover()

    def call(self, op_name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Validate against botocore's model, then run the operation; the answer leaves out the records' ``_`` keys.

        Raises:
            SageMakerError: the service error to return to the client.
            ChaosConfigError: the ``[chaos]`` config this call consults is not valid.
        """
        self.throttle.check(op_name)  # before validation: a throttled request is refused unread
        validate_input(op_name, params)
        operation = self.operations.get(op_name)
        if operation is None:
            raise validation(f"The operation {op_name} is not supported by the local SageMaker runtime.")
        if op_name in QUOTA_OPERATIONS:
            with self._quota_lock:
                self.quotas.check(op_name, params)
                result = operation(params)
        else:
            result = operation(params)
        # NOTE: records keep the runtime's own state under "_" keys (an endpoint's deployed snapshot, a tuning job's
        # training jobs), which no answer may carry. Top level only, as before: below it the keys are the caller's
        # data (the "_tuning_objective_metric" hyperparameter stays in a tuning job's training jobs' HyperParameters).
        return {k: v for k, v in result.items() if not k.startswith("_")}

    def shutdown(self) -> None:
        self.tuning.shutdown()
        self.training.shutdown()
        self.endpoints.shutdown()

    # ----------------------------------------------------------------------------------------------- tags
    def _tagged(self, create: Operation, arn_key: str) -> Operation:
        def wrapped(params: dict[str, Any]) -> dict[str, Any]:
            result = create(params)
            if params.get("Tags"):
                self._merge_tags(result[arn_key], params["Tags"])
            return result

        return wrapped

    def _untag_after(self, result: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
        self.records.delete("tags", arn(kind, name))
        return result

    def _check_arn(self, resource_arn: str) -> None:
        kind, _, name = resource_arn.rpartition(":")[2].partition("/")
        if kind not in ARN_KINDS or not name:
            raise validation(f"Invalid resource ARN {resource_arn!r}; valid resource types: {sorted(ARN_KINDS)}.")
        record_kind, name_key = ARN_KINDS[kind]
        if not any(r[name_key].lower() == name for r in self.records.all(record_kind)):
            raise validation(f"Resource {resource_arn} does not exist.")

    def _merge_tags(self, resource_arn: str, tags: list[dict[str, str]]) -> list[dict[str, str]]:
        current = {t["Key"]: t["Value"] for t in (self.records.get("tags", resource_arn) or {}).get("Tags", [])}
        current.update({t["Key"]: t.get("Value", "") for t in tags})
        if len(current) > MAX_TAGS:
            raise validation(f"A resource can have at most {MAX_TAGS} tags.")
        merged = [{"Key": k, "Value": v} for k, v in current.items()]
        self.records.put("tags", resource_arn, {"ResourceArn": resource_arn, "Tags": merged})
        return merged

    def add_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_arn(params["ResourceArn"])
        self._merge_tags(params["ResourceArn"], params["Tags"])
        return {"Tags": params["Tags"]}

    def list_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_arn(params["ResourceArn"])
        tags = (self.records.get("tags", params["ResourceArn"]) or {}).get("Tags", [])
        return page_slice(tags, params, "Tags", default_size=50)

    def delete_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_arn(params["ResourceArn"])
        record = self.records.get("tags", params["ResourceArn"]) or {"ResourceArn": params["ResourceArn"], "Tags": []}
        drop = set(params["TagKeys"])
        record["Tags"] = [t for t in record["Tags"] if t["Key"] not in drop]
        self.records.put("tags", params["ResourceArn"], record)
        return {}
