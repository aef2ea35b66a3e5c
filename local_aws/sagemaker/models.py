"""CreateModel / DescribeModel / DeleteModel / ListModels and the endpoint-config operations (records only)."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from local_aws.s3.store import ObjectStore
from local_aws.sagemaker.errors import arn, check_s3_uri, validation
from local_aws.sagemaker.listing import filter_records, page
from local_aws.sagemaker.records import RecordStore


def primary_container(model: dict[str, Any]) -> dict[str, Any]:
    """The container a single-container model serves (``PrimaryContainer`` or the first of ``Containers``)."""
    return dict((model.get("Containers") or [model.get("PrimaryContainer") or {}])[0])


class Models:
    """Models and endpoint configs: validated, persisted records that endpoints snapshot when they deploy."""

    def __init__(self, records: RecordStore, objects: ObjectStore) -> None:
        self.records = records
        self.objects = objects
        self._lock = threading.RLock()

    # ----------------------------------------------------------------------------------------------- models
    def create_model(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ModelName"]
        model_arn = arn("model", name)
        containers = params.get("Containers") or (
            [params["PrimaryContainer"]] if params.get("PrimaryContainer") else []
        )
        if not containers:
            raise validation("Either PrimaryContainer or Containers must be specified.")
        for container in containers:
            url = container.get("ModelDataUrl")
            if url:
                check_s3_uri(url, "ModelDataUrl")
        with self._lock:
            if self.records.get("models", name):
                raise validation(f'Cannot create already existing model "{model_arn}".')
            record = {k: v for k, v in params.items() if k != "Tags"}
            record.update(ModelArn=model_arn, CreationTime=time.time())
            record.setdefault("EnableNetworkIsolation", False)
            self.records.put("models", name, record)
        return {"ModelArn": model_arn}

    def describe_model(self, name: str) -> dict[str, Any]:
        record = self.records.get("models", name)
        if record is None:
            raise validation(f'Could not find model "{arn("model", name)}".')
        return record

    def delete_model(self, name: str) -> dict[str, Any]:
        self.describe_model(name)
        self.records.delete("models", name)
        return {}

    def list_models(self, params: dict[str, Any]) -> dict[str, Any]:
        records = filter_records(self.records.all("models"), params, "ModelName", None)
        items = [{k: r[k] for k in ("ModelName", "ModelArn", "CreationTime")} for r in records]
        return page(items, params, "Models", "ModelName", None)

    # ----------------------------------------------------------------------------------------------- configs
    def create_endpoint_config(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointConfigName"]
        config_arn = arn("endpoint-config", name)
        with self._lock:
            if self.records.get("endpoint-configs", name):
                raise validation(f'Cannot create already existing endpoint configuration "{config_arn}".')
            variants = copy.deepcopy(params["ProductionVariants"])
            for variant in variants:
                if not variant.get("ModelName"):
                    raise validation(f"ProductionVariant {variant['VariantName']}: ModelName is required locally.")
                self.describe_model(variant["ModelName"])
                variant.setdefault("InitialVariantWeight", 1.0)
                if not variant.get("ServerlessConfig"):
                    variant.setdefault("InitialInstanceCount", 1)
            names = [v["VariantName"] for v in variants]
            if len(set(names)) != len(names):
                raise validation("ProductionVariants must have unique VariantName values.")
            record = {k: v for k, v in params.items() if k != "Tags"}
            record.update(ProductionVariants=variants, EndpointConfigArn=config_arn, CreationTime=time.time())
            self.records.put("endpoint-configs", name, record)
        return {"EndpointConfigArn": config_arn}

    def describe_endpoint_config(self, name: str) -> dict[str, Any]:
        record = self.records.get("endpoint-configs", name)
        if record is None:
            raise validation(f'Could not find endpoint configuration "{arn("endpoint-config", name)}".')
        return record

    def delete_endpoint_config(self, name: str) -> dict[str, Any]:
        self.describe_endpoint_config(name)
        self.records.delete("endpoint-configs", name)
        return {}

    def list_endpoint_configs(self, params: dict[str, Any]) -> dict[str, Any]:
        records = filter_records(self.records.all("endpoint-configs"), params, "EndpointConfigName", None)
        items = [{k: r[k] for k in ("EndpointConfigName", "EndpointConfigArn", "CreationTime")} for r in records]
        return page(items, params, "EndpointConfigs", "EndpointConfigName", None)

    def snapshot(self, config_name: str) -> dict[str, Any]:
        """What an endpoint deploys: the config and its models as they are now.

        SageMaker keeps serving after the config and models are deleted, so an endpoint keeps this copy and a
        restarted server can bring the endpoint back from it (and the artifact in the local S3) without retraining.
        """
        config = self.describe_endpoint_config(config_name)
        models = {v["ModelName"]: self.describe_model(v["ModelName"]) for v in config["ProductionVariants"]}
        return {"config": config, "models": models, "id": f"{int(time.time() * 1000):x}"}
