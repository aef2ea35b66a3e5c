"""Delete what the state machine created for an endpoint (SageMaker resources are not in the stack, so ``sam
delete`` leaves them): scaling policies and targets first (UpdateEndpoint/DeleteEndpoint refuse otherwise), then
the endpoint, its configs and models. Works the same on both targets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

SAGEMAKER_NAMESPACE = "sagemaker"


def created_by_workflow(name: str, prefix: str) -> bool:
    """Whether a model/endpoint-config name is one the state machine made: ``<prefix>-<token without dashes>``.

    NOTE: the ASL names them ``${ResourcePrefix}-<md5 of the execution name>``; requiring no further dash keeps
    ``dogbreed-dev`` from matching another environment's ``dogbreed-dev-2-<md5>``.
    """
    rest = name[len(prefix) + 1 :] if name.startswith(prefix + "-") else ""
    return bool(rest) and "-" not in rest


@dataclass
class TeardownPlan:
    endpoint: str | None
    scalable_targets: list[str]
    scaling_policies: list[tuple[str, str]]
    endpoint_configs: list[str]
    models: list[str]

    def lines(self) -> list[str]:
        out = [f"endpoint        {self.endpoint}"] if self.endpoint else []
        out += [f"scaling policy  {policy} on {resource}" for resource, policy in self.scaling_policies]
        out += [f"scalable target {resource}" for resource in self.scalable_targets]
        out += [f"endpoint config {name}" for name in self.endpoint_configs]
        out += [f"model           {name}" for name in self.models]
        return out


def _names(pages: Iterator[dict[str, Any]], list_key: str, name_key: str, prefix: str) -> list[str]:
    return sorted(
        item[name_key] for page in pages for item in page[list_key] if created_by_workflow(item[name_key], prefix)
    )


def plan_teardown(sagemaker: Any, autoscaling: Any, endpoint_name: str, prefix: str) -> TeardownPlan:
    """Find what to delete; nothing is changed."""
    try:
        sagemaker.describe_endpoint(EndpointName=endpoint_name)
        endpoint: str | None = endpoint_name
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ValidationException":
            raise
        endpoint = None  # already gone: "Could not find endpoint"
    targets = [
        t["ResourceId"]
        for page in autoscaling.get_paginator("describe_scalable_targets").paginate(
            ServiceNamespace=SAGEMAKER_NAMESPACE
        )
        for t in page["ScalableTargets"]
        if t["ResourceId"].startswith(f"endpoint/{endpoint_name}/variant/")
    ]
    policies = [
        (p["ResourceId"], p["PolicyName"])
        for resource in targets
        for page in autoscaling.get_paginator("describe_scaling_policies").paginate(
            ServiceNamespace=SAGEMAKER_NAMESPACE, ResourceId=resource
        )
        for p in page["ScalingPolicies"]
    ]
    configs = _names(
        sagemaker.get_paginator("list_endpoint_configs").paginate(NameContains=prefix),
        "EndpointConfigs",
        "EndpointConfigName",
        prefix,
    )
    models = _names(sagemaker.get_paginator("list_models").paginate(NameContains=prefix), "Models", "ModelName", prefix)
    return TeardownPlan(endpoint, targets, policies, configs, models)


def execute_teardown(sagemaker: Any, autoscaling: Any, plan: TeardownPlan, echo: Callable[[str], None]) -> None:
    """Delete in dependency order: scaling first (UpdateEndpoint/DeleteEndpoint refuse otherwise), then the rest."""
    for resource, policy in plan.scaling_policies:
        autoscaling.delete_scaling_policy(
            PolicyName=policy,
            ServiceNamespace=SAGEMAKER_NAMESPACE,
            ResourceId=resource,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        )
        echo(f"deleted scaling policy {policy}")
    for resource in plan.scalable_targets:
        autoscaling.deregister_scalable_target(
            ServiceNamespace=SAGEMAKER_NAMESPACE,
            ResourceId=resource,
            ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        )
        echo(f"deregistered scalable target {resource}")
    if plan.endpoint:
        sagemaker.delete_endpoint(EndpointName=plan.endpoint)
        echo(f"deleted endpoint {plan.endpoint}")
    for name in plan.endpoint_configs:
        sagemaker.delete_endpoint_config(EndpointConfigName=name)
        echo(f"deleted endpoint config {name}")
    for name in plan.models:
        sagemaker.delete_model(ModelName=name)
        echo(f"deleted model {name}")
