"""SDK v2 path: ``sagemaker.pytorch.PyTorch(...).fit({"training": "s3://..."})`` against the local runtime.

Run with the ``.venv-sdk2`` interpreter. ``AWS_*`` from ``python -m ops env`` plus

- ``SDK_ROLE_ARN``: the stack's ``SageMakerExecutionRoleArn``;
- ``SDK_BUCKET``: passed as ``Session(default_bucket=...)`` so the SDK never derives ``sagemaker-<region>-<account>``
  through its hard-coded ``https://sts.<region>.amazonaws.com`` client;
- ``SDK_CODE_LOCATION``: optional ``code_location``; the source bundle goes to
  ``<code_location>/<job>/source/sourcedir.tar.gz`` (default ``s3://<default bucket>/<job>/source/...``);
- ``SDK_SOURCE_DIR`` / ``SDK_ENTRY_SCRIPT``: ``source_dir`` / ``entry_point``;
- ``SDK_TRAIN_URI``: the ``training`` channel; ``SDK_OUTPUT_PATH``: ``output_path``;
- ``SDK_FRAMEWORK_VERSION`` / ``SDK_PY_VERSION``: resolved to a DLC image URI offline (the SDK's bundled JSON);
- ``SDK_HYPERPARAMETERS`` (JSON object), ``SDK_METRIC_DEFINITIONS`` (JSON list of ``{Name, Regex}``), optional;
- ``SDK_BASE_JOB_NAME``: optional; ``SDK_LOGS``: ``fit(logs=...)``, default ``"All"`` (tail CloudWatch Logs).

Prints ``SDK_RESULT {json}`` (job name, status, model artifact, image) as its last line; exit status 0 only if the
job completed.
"""

from __future__ import annotations

import json
import logging
import os
import sys

import boto3
from sagemaker.pytorch import PyTorch
from sagemaker.session import Session

# NOTE: the SDK reports calls to https://sm-pysdk-t-<region>.s3.<region>.amazonaws.com (real AWS) unless this
# SDK-defaults key is set (sagemaker/telemetry/telemetry_logging.py); a local run must never reach AWS.
SDK_DEFAULTS = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def main() -> int:
    """Fit once and report the outcome."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    env = os.environ
    session = Session(
        boto_session=boto3.Session(region_name=env["AWS_DEFAULT_REGION"]),
        default_bucket=env["SDK_BUCKET"],
        sagemaker_config=SDK_DEFAULTS,
    )
    estimator = PyTorch(
        entry_point=env["SDK_ENTRY_SCRIPT"],
        source_dir=env["SDK_SOURCE_DIR"],
        framework_version=env.get("SDK_FRAMEWORK_VERSION", "2.5.1"),
        py_version=env.get("SDK_PY_VERSION", "py311"),
        role=env["SDK_ROLE_ARN"],
        instance_count=1,
        instance_type="ml.m5.large",
        hyperparameters=json.loads(env.get("SDK_HYPERPARAMETERS") or "{}"),
        metric_definitions=json.loads(env.get("SDK_METRIC_DEFINITIONS") or "[]") or None,
        output_path=env["SDK_OUTPUT_PATH"],
        base_job_name=env.get("SDK_BASE_JOB_NAME", "sdk2-pytorch"),
        max_run=int(env.get("SDK_MAX_RUN", "600")),
        code_location=env.get("SDK_CODE_LOCATION") or None,
        sagemaker_session=session,
    )
    estimator.fit({"training": env["SDK_TRAIN_URI"]}, wait=True, logs=env.get("SDK_LOGS", "All"))
    description = estimator.latest_training_job.describe()
    result = {
        "TrainingJobName": description["TrainingJobName"],
        "TrainingJobStatus": description["TrainingJobStatus"],
        "S3ModelArtifacts": description["ModelArtifacts"]["S3ModelArtifacts"],
        "TrainingImage": description["AlgorithmSpecification"]["TrainingImage"],
    }
    print("SDK_RESULT " + json.dumps(result), flush=True)
    return 0 if description["TrainingJobStatus"] == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main())
