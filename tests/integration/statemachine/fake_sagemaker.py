"""A minimal SageMaker control plane over HTTP for the state-machine execution tests.

It speaks the real wire protocol (JSON 1.1, ``X-Amz-Target: SageMaker.<Op>``), walks the real status sequences one
step per Describe call (so a test never depends on wall-clock timing), and answers with SageMaker's real error codes
and messages (reference/sagemaker-contract.md §4.2). Jobs do not train: a test decides each training job's metrics
through ``metrics_for(hyperparameters)``, and injects faults (``training_failure``, ``endpoint_outcome``). The
local runtime's real SageMaker server replaces it wherever no fault injection is needed.

UpdateEndpoint refuses an instance-type change while Application Auto Scaling has the variant registered, as AWS
does; the check asks moto (same process) for the registered targets.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
NAME_63 = 63
NAME_32 = 32
TRAINING_STEPS = ["Starting", "Downloading", "Training", "Uploading"]


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def arn(kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}/{name.lower()}"


def _valid_name(name: Any, limit: int) -> bool:
    if not isinstance(name, str) or not 1 <= len(name) <= limit or not name[0].isalnum() or not name[-1].isalnum():
        return False
    return all(c.isalnum() or c == "-" for c in name)


@dataclass
class FakeSageMaker:
    """State + behaviour knobs. ``metrics_for`` maps a job's hyperparameters to its final metrics."""

    metrics_for: Callable[[dict[str, str]], dict[str, float]] = lambda hps: {"valid:top1": 0.8, "test:top1": 0.8}
    training_failure: str | None = None  # FailureReason for the next training jobs, None = succeed
    endpoint_outcome: str = "InService"  # InService | Failed | RolledBack (for the next create/update)
    steps_per_transition: int = 1
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    training_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    tuning_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoint_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ plumbing
    def handle(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.calls.append((op, body))
            method = getattr(self, f"op_{op}", None)
            if method is None:
                raise ApiError("UnknownOperationException", f"Unknown operation {op}")
            return method(body)

    def ops(self, name: str) -> list[dict[str, Any]]:
        """Request bodies of every call to operation ``name``."""
        return [body for op, body in self.calls if op == name]

    @staticmethod
    def _require(body: dict[str, Any], *keys: str) -> None:
        for key in keys:
            if key not in body:
                raise ApiError(
                    "ValidationException",
                    f"1 validation error detected: Value null at '{key}' failed to "
                    "satisfy constraint: Member must not be null",
                )

    # ------------------------------------------------------------------ training
    def _new_training_job(
        self, name: str, hps: dict[str, str], body: dict[str, Any], tuning: str | None = None
    ) -> None:
        if name in self.training_jobs:
            raise ApiError(
                "ResourceInUse",
                "Training job names must be unique within an AWS account and region, and a "
                f"training job with this name already exists ({arn('training-job', name)})",
            )
        for key, value in hps.items():
            if not isinstance(value, str):
                raise ApiError("ValidationException", f"Hyperparameter {key} must be a string, got {value!r}")
        now = time.time()
        self.training_jobs[name] = {
            "TrainingJobName": name,
            "TrainingJobArn": arn("training-job", name),
            "TrainingJobStatus": "InProgress",
            "SecondaryStatus": "Starting",
            "HyperParameters": hps,
            "CreationTime": now,
            "LastModifiedTime": now,
            "StoppingCondition": body.get("StoppingCondition", {}),
            "RoleArn": body.get("RoleArn"),
            "ResourceConfig": body.get("ResourceConfig", {}),
            "EnableNetworkIsolation": body.get("EnableNetworkIsolation", False),
            "ModelArtifacts": {
                "S3ModelArtifacts": f"{body['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}/output/model.tar.gz"
            },
            "_step": 0,
            "_failure": self.training_failure,
            **({"TuningJobArn": arn("hyper-parameter-tuning-job", tuning)} if tuning else {}),
        }

    def _advance_training(self, job: dict[str, Any]) -> None:
        if job["TrainingJobStatus"] != "InProgress":
            return
        job["_step"] += 1
        index = job["_step"] // self.steps_per_transition
        if index < len(TRAINING_STEPS):
            job["SecondaryStatus"] = TRAINING_STEPS[index]
        elif job["_failure"]:
            job.update(TrainingJobStatus="Failed", SecondaryStatus="Failed", FailureReason=job["_failure"])
        else:
            metrics = self.metrics_for(job["HyperParameters"])
            job.update(
                TrainingJobStatus="Completed",
                SecondaryStatus="Completed",
                FinalMetricDataList=[
                    {"MetricName": k, "Value": float(v), "Timestamp": time.time()} for k, v in metrics.items()
                ],
            )
        job["LastModifiedTime"] = time.time()

    def op_CreateTrainingJob(self, body: dict[str, Any]) -> dict[str, Any]:
        self._require(body, "TrainingJobName", "AlgorithmSpecification", "RoleArn", "OutputDataConfig")
        name = body["TrainingJobName"]
        if not _valid_name(name, NAME_63):
            raise ApiError("ValidationException", f"Invalid TrainingJobName {name!r}")
        stop = body.get("StoppingCondition", {})
        if "MaxWaitTimeInSeconds" in stop and not body.get("EnableManagedSpotTraining"):
            raise ApiError("ValidationException", "MaxWaitTimeInSeconds is only valid with managed spot training")
        if body.get("EnableManagedSpotTraining") and stop.get("MaxWaitTimeInSeconds", 0) < stop.get(
            "MaxRuntimeInSeconds", 0
        ):
            raise ApiError("ValidationException", "MaxWaitTimeInSeconds must be at least MaxRuntimeInSeconds")
        self._new_training_job(name, body.get("HyperParameters", {}), body)
        return {"TrainingJobArn": arn("training-job", name)}

    def op_DescribeTrainingJob(self, body: dict[str, Any]) -> dict[str, Any]:
        job = self.training_jobs.get(body.get("TrainingJobName", ""))
        if job is None:
            raise ApiError("ValidationException", "Requested resource not found.")
        self._advance_training(job)
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def op_StopTrainingJob(self, body: dict[str, Any]) -> dict[str, Any]:
        job = self.training_jobs.get(body.get("TrainingJobName", ""))
        if job is None:
            raise ApiError("ValidationException", "Requested resource not found.")
        if job["TrainingJobStatus"] == "InProgress":
            job.update(TrainingJobStatus="Stopped", SecondaryStatus="Stopped")
        return {}

    # ------------------------------------------------------------------ tuning
    def op_CreateHyperParameterTuningJob(self, body: dict[str, Any]) -> dict[str, Any]:
        self._require(body, "HyperParameterTuningJobName", "HyperParameterTuningJobConfig")
        name = body["HyperParameterTuningJobName"]
        if not _valid_name(name, NAME_32):
            raise ApiError(
                "ValidationException", f"Invalid HyperParameterTuningJobName {name!r} (at most 32 characters)"
            )
        if name in self.tuning_jobs:
            raise ApiError("ResourceInUse", f"Tuning job {name} already exists")
        config = body["HyperParameterTuningJobConfig"]
        definition = body["TrainingJobDefinition"]
        static = definition.get("StaticHyperParameters", {})
        ranges = config.get("ParameterRanges", {})
        tuned_names = [r["Name"] for kind in ranges.values() for r in kind]
        overlap = sorted(set(tuned_names) & set(static))
        if overlap:
            raise ApiError("ValidationException", f"Hyperparameters {overlap} cannot be both static and tunable")
        rng = random.Random(name)
        children = []
        for index in range(int(config["ResourceLimits"]["MaxNumberOfTrainingJobs"])):
            tuned: dict[str, str] = {}
            for r in ranges.get("ContinuousParameterRanges", []):
                tuned[r["Name"]] = f"{rng.uniform(float(r['MinValue']), float(r['MaxValue'])):.6g}"
            for r in ranges.get("IntegerParameterRanges", []):
                tuned[r["Name"]] = str(rng.randint(int(r["MinValue"]), int(r["MaxValue"])))
            for r in ranges.get("CategoricalParameterRanges", []):
                tuned[r["Name"]] = rng.choice(r["Values"])
            child = f"{name}-{index + 1:03d}-{rng.getrandbits(32):08x}"
            self._new_training_job(child, {**static, **tuned}, definition, tuning=name)
            children.append((child, tuned))
        self.tuning_jobs[name] = {"name": name, "config": config, "children": children, "status": "InProgress"}
        return {"HyperParameterTuningJobArn": arn("hyper-parameter-tuning-job", name)}

    def op_DescribeHyperParameterTuningJob(self, body: dict[str, Any]) -> dict[str, Any]:
        tuning = self.tuning_jobs.get(body.get("HyperParameterTuningJobName", ""))
        if tuning is None:
            raise ApiError(
                "ResourceNotFound",
                f"Amazon SageMaker can't find a tuning job with name {body.get('HyperParameterTuningJobName')}",
            )
        jobs = [self.training_jobs[c] for c, _ in tuning["children"]]
        for job in jobs:
            self._advance_training(job)
        counters = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
        for job in jobs:
            status = job["TrainingJobStatus"]
            counters["NonRetryableError" if status == "Failed" else status] += 1
        metric = tuning["config"]["HyperParameterTuningJobObjective"]["MetricName"]
        scored = [
            (
                next((m["Value"] for m in job.get("FinalMetricDataList", []) if m["MetricName"] == metric), None),
                job,
                tuned,
            )
            for job, (_, tuned) in zip(jobs, tuning["children"], strict=True)
        ]
        scored = [s for s in scored if s[0] is not None]
        if tuning["status"] == "InProgress" and counters["InProgress"] == 0:
            tuning["status"] = "Completed"
        out: dict[str, Any] = {
            "HyperParameterTuningJobName": tuning["name"],
            "HyperParameterTuningJobArn": arn("hyper-parameter-tuning-job", tuning["name"]),
            "HyperParameterTuningJobConfig": tuning["config"],
            "HyperParameterTuningJobStatus": tuning["status"],
            "CreationTime": time.time(),
            "TrainingJobStatusCounters": counters,
            "ObjectiveStatusCounters": {
                "Succeeded": len(scored),
                "Pending": counters["InProgress"],
                "Failed": counters["NonRetryableError"],
            },
        }
        if scored:
            value, best, tuned = max(scored, key=lambda s: s[0])
            out["BestTrainingJob"] = {
                "TrainingJobName": best["TrainingJobName"],
                "TrainingJobArn": best["TrainingJobArn"],
                "CreationTime": best["CreationTime"],
                "TrainingJobStatus": best["TrainingJobStatus"],
                "TunedHyperParameters": tuned,
                "ObjectiveStatus": "Succeeded",
                "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": metric, "Value": value},
            }
        return out

    def op_StopHyperParameterTuningJob(self, body: dict[str, Any]) -> dict[str, Any]:
        tuning = self.tuning_jobs.get(body.get("HyperParameterTuningJobName", ""))
        if tuning is None:
            raise ApiError("ResourceNotFound", "Tuning job not found")
        tuning["status"] = "Stopped"
        return {}

    # ------------------------------------------------------------------ models and configs
    def op_CreateModel(self, body: dict[str, Any]) -> dict[str, Any]:
        self._require(body, "ModelName")
        name = body["ModelName"]
        if not _valid_name(name, NAME_63):
            raise ApiError("ValidationException", f"Invalid ModelName {name!r}")
        if name in self.models:
            raise ApiError("ValidationException", f'Cannot create already existing model "{arn("model", name)}".')
        self.models[name] = body
        return {"ModelArn": arn("model", name)}

    def op_DeleteModel(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.models.pop(body.get("ModelName", ""), None) is None:
            raise ApiError("ValidationException", f'Could not find model "{arn("model", body.get("ModelName", ""))}".')
        return {}

    def op_CreateEndpointConfig(self, body: dict[str, Any]) -> dict[str, Any]:
        self._require(body, "EndpointConfigName", "ProductionVariants")
        name = body["EndpointConfigName"]
        if not _valid_name(name, NAME_63):
            raise ApiError("ValidationException", f"Invalid EndpointConfigName {name!r}")
        if name in self.endpoint_configs:
            raise ApiError(
                "ValidationException",
                f'Cannot create already existing endpoint configuration "{arn("endpoint-config", name)}".',
            )
        for variant in body["ProductionVariants"]:
            if variant.get("ModelName") not in self.models:
                raise ApiError(
                    "ValidationException", f'Could not find model "{arn("model", str(variant.get("ModelName")))}".'
                )
        self.endpoint_configs[name] = {
            **body,
            "EndpointConfigArn": arn("endpoint-config", name),
            "CreationTime": time.time(),
        }
        return {"EndpointConfigArn": arn("endpoint-config", name)}

    def op_DescribeEndpointConfig(self, body: dict[str, Any]) -> dict[str, Any]:
        config = self.endpoint_configs.get(body.get("EndpointConfigName", ""))
        if config is None:
            raise ApiError(
                "ValidationException",
                "Could not find endpoint configuration "
                f'"{arn("endpoint-config", body.get("EndpointConfigName", ""))}".',
            )
        return config

    def op_DeleteEndpointConfig(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.endpoint_configs.pop(body.get("EndpointConfigName", ""), None) is None:
            raise ApiError("ValidationException", "Could not find endpoint configuration.")
        return {}

    # ------------------------------------------------------------------ endpoints
    def _endpoint(self, name: str) -> dict[str, Any]:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise ApiError("ValidationException", f'Could not find endpoint "{arn("endpoint", name)}".')
        return endpoint

    def op_CreateEndpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        self._require(body, "EndpointName", "EndpointConfigName")
        name = body["EndpointName"]
        if name in self.endpoints:
            raise ApiError("ValidationException", f'Cannot create already existing endpoint "{arn("endpoint", name)}".')
        if body["EndpointConfigName"] not in self.endpoint_configs:
            raise ApiError("ValidationException", "Could not find endpoint configuration.")
        now = time.time()
        self.endpoints[name] = {
            "EndpointName": name,
            "EndpointArn": arn("endpoint", name),
            "EndpointStatus": "Creating",
            "EndpointConfigName": body["EndpointConfigName"],
            "CreationTime": now,
            "LastModifiedTime": now,
            "_target": body["EndpointConfigName"],
            "_step": 0,
            "_outcome": self.endpoint_outcome,
        }
        return {"EndpointArn": arn("endpoint", name)}

    def op_UpdateEndpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        self._require(body, "EndpointName", "EndpointConfigName")
        endpoint = self._endpoint(body["EndpointName"])
        if endpoint["EndpointStatus"] != "InService":
            raise ApiError("ValidationException", f'Cannot update in-progress endpoint "{endpoint["EndpointArn"]}".')
        new = self.endpoint_configs.get(body["EndpointConfigName"])
        if new is None:
            raise ApiError("ValidationException", "Could not find endpoint configuration.")
        old = self.endpoint_configs.get(endpoint["EndpointConfigName"], {"ProductionVariants": [{}]})
        if self._scaling_registered(endpoint["EndpointName"]) and (
            old["ProductionVariants"][0].get("InstanceType") != new["ProductionVariants"][0].get("InstanceType")
        ):
            raise ApiError(
                "ValidationException",
                'The variant(s) "[AllTraffic]" is/are using auto scaling; deregister '
                "the scalable target before changing the instance type.",
            )
        endpoint.update(
            EndpointStatus="Updating",
            _target=body["EndpointConfigName"],
            _step=0,
            _outcome=self.endpoint_outcome,
            LastDeploymentConfig=body.get("DeploymentConfig"),
        )
        return {"EndpointArn": endpoint["EndpointArn"]}

    @staticmethod
    def _scaling_registered(name: str) -> bool:
        import boto3

        client = boto3.client("application-autoscaling", region_name=REGION)
        targets = client.describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=[f"endpoint/{name}/variant/AllTraffic"]
        )["ScalableTargets"]
        return bool(targets)

    def op_DescribeEndpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._endpoint(body.get("EndpointName", ""))
        if endpoint["EndpointStatus"] in ("Creating", "Updating"):
            endpoint["_step"] += 1
            if endpoint["_step"] >= 2 * self.steps_per_transition:
                outcome = endpoint["_outcome"]
                if outcome == "InService":
                    endpoint.update(EndpointStatus="InService", EndpointConfigName=endpoint["_target"])
                    endpoint.pop("FailureReason", None)
                elif outcome == "RolledBack":
                    endpoint.update(
                        EndpointStatus="InService", FailureReason="Auto-rollback: alarm fired during the baking period."
                    )
                else:
                    if endpoint["EndpointStatus"] == "Creating":
                        endpoint["EndpointConfigName"] = endpoint["_target"]
                    endpoint.update(
                        EndpointStatus="Failed",
                        FailureReason="The primary container for production variant AllTraffic did not pass the ping "
                        "health check.",
                    )
                endpoint["LastModifiedTime"] = time.time()
        return {k: v for k, v in endpoint.items() if not k.startswith("_")}

    def op_DeleteEndpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        self._endpoint(body.get("EndpointName", ""))
        del self.endpoints[body["EndpointName"]]
        return {}

    # ------------------------------------------------------------------ tags
    def op_AddTags(self, body: dict[str, Any]) -> dict[str, Any]:
        self._require(body, "ResourceArn", "Tags")
        for tag in body["Tags"]:
            if not isinstance(tag.get("Value"), str):
                raise ApiError("ValidationException", f"Tag value must be a string: {tag!r}")
        self.tags.setdefault(body["ResourceArn"], {}).update({t["Key"]: t["Value"] for t in body["Tags"]})
        return {"Tags": body["Tags"]}

    def op_ListTags(self, body: dict[str, Any]) -> dict[str, Any]:
        self._require(body, "ResourceArn")
        return {"Tags": [{"Key": k, "Value": v} for k, v in self.tags.get(body["ResourceArn"], {}).items()]}


class FakeSageMakerServer:
    """Serves a :class:`FakeSageMaker` on 127.0.0.1 (port 0 = any free port); assign ``state`` to reset it."""

    def __init__(self, state: FakeSageMaker | None = None) -> None:
        self.state = state or FakeSageMaker()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                op = (self.headers.get("X-Amz-Target") or "").partition(".")[2]
                try:
                    status, payload = 200, outer.state.handle(op, json.loads(raw or b"{}"))
                except ApiError as exc:
                    status, payload = exc.status, {"__type": exc.code, "message": exc.message}
                data = json.dumps(payload, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-RequestId", "fake-0000")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> FakeSageMakerServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
