"""What DescribeEndpoint shows of a deployment's variants, and the variant properties an update may retain."""

from __future__ import annotations

import time
from typing import Any

from local_aws.sagemaker.fleet import Fleet, instance_count
from local_aws.sagemaker.models import primary_container


def variants_view(snapshot: dict[str, Any], fleet: Fleet | None, status: str | None = None) -> list[dict[str, Any]]:
    """DescribeEndpoint's ProductionVariants of a deployment (with ``status``: PendingDeploymentSummary's)."""
    out = []
    for variant in snapshot["config"]["ProductionVariants"]:
        image = primary_container(snapshot["models"][variant["ModelName"]]).get("Image", "local")
        weight = float(variant.get("InitialVariantWeight", 1.0))
        view: dict[str, Any] = {
            "VariantName": variant["VariantName"],
            "DeployedImages": [{"SpecifiedImage": image, "ResolvedImage": image, "ResolutionTime": time.time()}],
            "CurrentWeight": weight,
            "DesiredWeight": weight,
            "CurrentInstanceCount": fleet.count(variant["VariantName"]) if fleet else 0,
            "DesiredInstanceCount": instance_count(variant),
        }
        if status is not None:  # a PendingProductionVariantSummary
            view["InstanceType"] = variant.get("InstanceType")
            view["VariantStatus"] = [{"Status": status, "StartTime": time.time()}]
        out.append({k: v for k, v in view.items() if v is not None})
    return out


def retain_variant_properties(snapshot: dict[str, Any], record: dict[str, Any], excluded: list[dict[str, str]]) -> None:
    """RetainAllVariantProperties: same-named variants keep the endpoint's DesiredInstanceCount and DesiredWeight,
    unless ExcludeRetainedVariantProperties names them (botocore's UpdateEndpoint documentation)."""
    skip = {e["VariantPropertyType"] for e in excluded}
    current = {v["VariantName"]: v for v in record.get("ProductionVariants", [])}
    for variant in snapshot["config"]["ProductionVariants"]:
        kept = current.get(variant["VariantName"])
        if kept is None:
            continue
        if "DesiredInstanceCount" not in skip and kept.get("DesiredInstanceCount") is not None:
            variant["InitialInstanceCount"] = kept["DesiredInstanceCount"]
        if "DesiredWeight" not in skip and kept.get("DesiredWeight") is not None:
            variant["InitialVariantWeight"] = kept["DesiredWeight"]
