"""Helpers for the state-machine tests: the deployed stack's values, execution inputs, runs, histories, read-backs.

Everything here talks to a running local AWS over HTTP with real boto3 clients, exactly as a user's tools would:
names, buckets, roles and the KMS key come from the deployed stack (its outputs and the template's
DefinitionSubstitutions as deployed), never from constants typed into the tests.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local_aws.cloudformation import definition_substitutions, load_template
from local_aws.constants import EXECUTION_TERMINAL, SAMCONFIG_PATH, TEMPLATE_PATH
from tests.integration.local_aws_fixtures import Aws

EVENTS = Path(__file__).resolve().parents[2] / "events"
# Where the session fixture uploads the rendered dataset and the packaged training/ in the stack's buckets.
DATA_PREFIX = "datasets/dogImages/"
SOURCE_KEY = "code/sourcedir.tar.gz"
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# Generous: a real training job is ~10-20 s on an idle 2-core box, far more when other work shares the CPUs.
TIMEOUT = 300.0


@dataclass(frozen=True)
class Stack:
    """The deployed stack as the tests see it: clients on the local AWS and the values the ASL was deployed with."""

    aws: Aws
    outputs: dict[str, str]
    substitutions: dict[str, str]
    sfn: Any
    sm: Any
    runtime: Any
    autoscaling: Any
    s3: Any
    logs: Any

    @classmethod
    def of(cls, aws: Aws) -> Stack:
        """Read the stack's outputs (CloudFormation DescribeStacks) and the DefinitionSubstitutions it deployed."""
        assert aws.runtime.stack is not None
        described = aws.client("cloudformation").describe_stacks(StackName=aws.runtime.stack.stack_name)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0]["Outputs"]}
        # The same inputs server.py deploys with: template.yaml, samconfig.toml's default environment.
        substitutions = definition_substitutions(load_template(TEMPLATE_PATH), samconfig=SAMCONFIG_PATH)
        return cls(
            aws=aws,
            outputs=outputs,
            substitutions=substitutions,
            sfn=aws.client("stepfunctions"),
            sm=aws.client("sagemaker"),
            runtime=aws.client("sagemaker-runtime"),
            autoscaling=aws.client("application-autoscaling"),
            s3=aws.client("s3"),
            logs=aws.client("logs"),
        )

    @property
    def machine_arn(self) -> str:
        return self.outputs["StateMachineArn"]

    @property
    def endpoint(self) -> str:
        return self.outputs["EndpointName"]

    @property
    def prefix(self) -> str:
        return self.outputs["ResourcePrefix"]

    @property
    def resource_id(self) -> str:
        """The endpoint variant's Application Auto Scaling resource id."""
        return f"endpoint/{self.endpoint}/variant/AllTraffic"

    @property
    def data_uri(self) -> str:
        return f"s3://{self.outputs['DataBucketName']}/{DATA_PREFIX}"

    @property
    def source_uri(self) -> str:
        return f"s3://{self.outputs['ArtifactBucketName']}/{SOURCE_KEY}"

    def job_name(self, execution: str) -> str:
        """The name the ASL gives this execution's training job, model and endpoint config (CONTRACTS §6)."""
        return f"{self.prefix}-{hashlib.md5(execution.encode()).hexdigest()}"


@dataclass(frozen=True)
class Execution:
    """One ended execution as DescribeExecution reports it (``output`` JSON-decoded)."""

    arn: str
    name: str
    status: str
    error: str | None
    cause: str | None
    output: dict[str, Any] | None
    describe: dict[str, Any]

    @property
    def why(self) -> tuple[str | None, str | None]:
        """(error, cause), for assertion messages."""
        return self.error, self.cause


def upload_tree(s3: Any, root: Path, bucket: str, prefix: str, threads: int = 8) -> int:
    """PutObject every file under ``root`` to ``s3://bucket/prefix``; returns the number of files."""
    files = sorted(p for p in root.rglob("*") if p.is_file())

    def put(path: Path) -> None:
        s3.put_object(Bucket=bucket, Key=prefix + path.relative_to(root).as_posix(), Body=path.read_bytes())

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, files))
    return len(files)


def load_input(name: str, training_data: str, source_dir: str) -> dict[str, Any]:
    """The execution input fixture tests/events/sfn_<name>.json, with TrainingData and SourceDir filled in."""
    payload: dict[str, Any] = json.loads((EVENTS / f"sfn_{name}.json").read_text())
    payload["TrainingData"] = training_data
    payload["SourceDir"] = source_dir
    return payload


def sfn_event(name: str, stack: Stack) -> dict[str, Any]:
    """An execution input fixture from tests/events/sfn_<name>.json, pointed at this stack's uploads."""
    return load_input(name, stack.data_uri, stack.source_uri)


def quick_input(training_data: str, source_dir: str, gate: float) -> dict[str, Any]:
    """The small event, trained for 2 optimizer steps only: near-chance accuracy in a few seconds.

    Args:
        training_data: the TrainingData URI (a dogImages-style prefix).
        source_dir: the SourceDir URI (a sourcedir tarball).
        gate: Gate.MinTestAccuracy for the execution.
    """
    payload = load_input("local_small", training_data, source_dir)
    payload["Hyperparameters"] = {**payload["Hyperparameters"], "epochs": "1", "max-steps": "2"}
    payload["Gate"] = {"MinTestAccuracy": gate}
    return payload


def quick(stack: Stack, gate: float) -> dict[str, Any]:
    """:func:`quick_input` pointed at this stack's uploads."""
    return quick_input(stack.data_uri, stack.source_uri, gate)


def describe(sfn: Any, arn: str) -> Execution:
    """DescribeExecution, as an :class:`Execution`."""
    doc = sfn.describe_execution(executionArn=arn)
    return Execution(
        arn=doc["executionArn"],
        name=doc["name"],
        status=doc["status"],
        error=doc.get("error"),
        cause=doc.get("cause"),
        output=json.loads(doc["output"]) if doc.get("output") else None,
        describe=doc,
    )


def wait(sfn: Any, arn: str, timeout: float = TIMEOUT) -> Execution:
    """Poll DescribeExecution until the execution ends."""
    deadline = time.monotonic() + timeout
    while True:
        record = describe(sfn, arn)
        if record.status in EXECUTION_TERMINAL:
            return record
        assert time.monotonic() < deadline, f"execution {arn} still {record.status} after {timeout:g} s"
        time.sleep(0.5)


def start(sfn: Any, machine_arn: str, payload: dict[str, Any], name: str | None = None) -> str:
    """StartExecution; returns the execution ARN."""
    args: dict[str, Any] = {"stateMachineArn": machine_arn, "input": json.dumps(payload)}
    if name is not None:
        args["name"] = name
    return str(sfn.start_execution(**args)["executionArn"])


def run(stack: Stack, payload: dict[str, Any], name: str, timeout: float = TIMEOUT) -> Execution:
    """Start one execution of the stack's state machine and wait for its end."""
    return wait(stack.sfn, start(stack.sfn, stack.machine_arn, payload, name), timeout)


def history_pages(sfn: Any, arn: str, page: int = 1000, reverse: bool = False) -> Iterator[dict[str, Any]]:
    """Every GetExecutionHistory answer for one execution, following nextToken."""
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": page, "reverseOrder": reverse}
    while True:
        answer = sfn.get_execution_history(**kwargs)
        yield answer
        if not answer.get("nextToken"):
            return
        kwargs["nextToken"] = answer["nextToken"]


def history(sfn: Any, arn: str, page: int = 1000, reverse: bool = False) -> list[dict[str, Any]]:
    """An execution's whole history (all pages), oldest first unless ``reverse``."""
    return [event for answer in history_pages(sfn, arn, page, reverse) for event in answer["events"]]


def states(events: list[dict[str, Any]]) -> list[str]:
    """Names of the states entered, in order."""
    return [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]


def sdk_calls(events: list[dict[str, Any]], service: str) -> list[str]:
    """The actions of the ``aws-sdk:<service>`` tasks the interpreter scheduled, in order, lower case."""
    details = [e["taskScheduledEventDetails"] for e in events if e["type"] == "TaskScheduled"]
    return [d["resource"].lower() for d in details if d["resourceType"] == f"aws-sdk:{service}"]


def metrics(job: dict[str, Any]) -> dict[str, float]:
    """A DescribeTrainingJob answer's FinalMetricDataList as a dict."""
    return {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}


def hp(value: str) -> str:
    """A hyperparameter as the training toolkit reads it (JSON-decoded when it is a JSON string, else raw)."""
    return str(json.loads(value)) if value.startswith('"') else value


def exists(call: Any, **kwargs: Any) -> bool:
    """Whether a SageMaker Describe* call finds its resource (ValidationException: it does not)."""
    try:
        call(**kwargs)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ValidationException", exc
        return False
    return True


def resources(sm: Any, name: str) -> tuple[bool, bool]:
    """Whether the model and the endpoint config called ``name`` exist on the server."""
    return (
        exists(sm.describe_model, ModelName=name),
        exists(sm.describe_endpoint_config, EndpointConfigName=name),
    )


def training_log(stack: Stack, job: str) -> str:
    """Every line a training job's hosts logged, from CloudWatch Logs (``/aws/sagemaker/TrainingJobs``)."""
    lines: list[str] = []
    kwargs: dict[str, Any] = {"logGroupName": TRAINING_LOG_GROUP, "logStreamNamePrefix": f"{job}/"}
    while True:
        answer = stack.logs.filter_log_events(**kwargs)
        lines.extend(e["message"] for e in answer["events"])
        if not answer.get("nextToken"):
            return "\n".join(lines)
        kwargs["nextToken"] = answer["nextToken"]


def scalable_targets(stack: Stack) -> list[dict[str, Any]]:
    """Application Auto Scaling's registered SageMaker targets."""
    return list(stack.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"])


def scaling_policies(stack: Stack) -> list[dict[str, Any]]:
    """Application Auto Scaling's SageMaker scaling policies."""
    return list(stack.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"])


@dataclass(frozen=True)
class Deployment:
    """What the endpoint serves, read back from the server."""

    config_name: str
    model_name: str
    training_job: str
    test_top1: str
    instance_type: str
    creation_time: Any


def read_deployment(stack: Stack) -> Deployment | None:
    """The endpoint's config, model and recorded accuracy, or None when it is missing or not InService."""
    sm = stack.sm
    try:
        endpoint = sm.describe_endpoint(EndpointName=stack.endpoint)
    except ClientError:
        return None
    if endpoint["EndpointStatus"] != "InService":
        return None
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]}
    if "dogbreed:test-top1" not in tags:
        return None
    return Deployment(
        config_name=endpoint["EndpointConfigName"],
        model_name=config["ProductionVariants"][0]["ModelName"],
        training_job=tags["dogbreed:training-job"],
        test_top1=tags["dogbreed:test-top1"],
        instance_type=config["ProductionVariants"][0]["InstanceType"],
        creation_time=endpoint["CreationTime"],
    )


def predict_version(runtime: Any, endpoint: str, image: bytes) -> str:
    """The model_version that the endpoint's inference handler answers with (proves which model serves)."""
    response = runtime.invoke_endpoint(EndpointName=endpoint, Body=image, ContentType="image/jpeg")
    return str(json.loads(response["Body"].read())["model_version"])


def remove_endpoint(stack: Stack) -> None:
    """Delete the endpoint (the local DeleteEndpoint drains and stops its instances) and its autoscaling."""
    try:
        stack.sm.delete_endpoint(EndpointName=stack.endpoint)
    except ClientError as exc:
        assert "Could not find endpoint" in str(exc), exc
    for policy in scaling_policies(stack):
        stack.autoscaling.delete_scaling_policy(
            PolicyName=policy["PolicyName"],
            ServiceNamespace="sagemaker",
            ResourceId=policy["ResourceId"],
            ScalableDimension=policy["ScalableDimension"],
        )
    for target in scalable_targets(stack):
        stack.autoscaling.deregister_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=target["ResourceId"], ScalableDimension=target["ScalableDimension"]
        )
    assert not exists(stack.sm.describe_endpoint, EndpointName=stack.endpoint)
    assert scalable_targets(stack) == [] and scaling_policies(stack) == []
