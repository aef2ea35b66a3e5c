"""A local SageMaker (control plane + runtime) in-process on a temp home, for boto3 clients through werkzeug.

Nothing here opens a socket: the ``ControlPlane`` is built from the same parts ``local_aws.server`` wires up, and
``wsgi_boto3`` routes a real boto3 client's requests to its WSGI app.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from local_aws import chaos
from local_aws.constants import StateLayout
from local_aws.logs.store import LogStore
from local_aws.processes import ProcessSupervisor
from local_aws.s3.store import ObjectStore
from local_aws.sagemaker.api import SageMakerApi
from local_aws.sagemaker.control import ControlPlane, SageMakerDeps
from tests.unit.local_aws.wsgi_boto3 import (
    ACCESS_KEY_ID,
    ENDPOINT,
    REGION,
    SECRET_ACCESS_KEY,
    route_to_app,
    wsgi_client,
)

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def training_job_request(name: str, instance_type: str = "ml.m5.large", count: int = 1) -> dict[str, Any]:
    """A valid CreateTrainingJob request (it never gets far locally: no code, no data)."""
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": "local", "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://artifacts/out"},
        "ResourceConfig": {"InstanceType": instance_type, "InstanceCount": count, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }


class LocalSageMaker:
    """The app, its home, and a way to rewrite ``config.toml``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        layout = StateLayout(home)
        self.objects = ObjectStore(layout.s3)
        supervisor = ProcessSupervisor(layout.processes)
        self.control = ControlPlane(
            SageMakerDeps(layout=layout, objects=self.objects, supervisor=supervisor, logs=LogStore(layout.logs))
        )
        self.app = SageMakerApi(self.control)

    def client(self, service: str = "sagemaker", retries: dict[str, Any] | None = None) -> Any:
        """A boto3 client answered by this app: no retries unless ``retries`` (botocore's retry config) says so."""
        if retries is None:
            return wsgi_client(service, self.app)
        client = boto3.client(
            service,
            endpoint_url=ENDPOINT,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            config=Config(retries=retries),
        )
        return route_to_app(client, self.app)

    def chaos(self, text: str) -> None:
        """Write the ``[chaos]`` config (a new mtime every time, so the runtime sees the change)."""
        path = chaos.config_path(self.home)
        before = path.stat() if path.exists() else None
        path.write_text(text, encoding="utf-8")
        after = path.stat()
        if before is not None and (before.st_mtime_ns, before.st_size) == (after.st_mtime_ns, after.st_size):
            # The kernel's file clock ticks coarsely: two writes in one tick would look like no change.
            os.utime(path, ns=(after.st_atime_ns, after.st_mtime_ns + 1_000_000))
