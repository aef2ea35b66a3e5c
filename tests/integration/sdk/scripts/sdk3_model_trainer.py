"""SDK v3 path: ``sagemaker.train.ModelTrainer(...).train()`` in SageMaker-job mode against the local runtime.

Run with the ``.venv-sdk3`` interpreter. Everything comes from the environment: the usual ``AWS_*`` variables
(``python -m ops env``: ``AWS_ENDPOINT_URL``, the runtime's keys, ``AWS_DEFAULT_REGION``) plus

- ``SDK_ROLE_ARN``: the stack's ``SageMakerExecutionRoleArn``;
- ``SDK_BUCKET`` (+ optional ``SDK_BUCKET_PREFIX``): an existing bucket, passed as ``Session(default_bucket=...,
  default_bucket_prefix=...)`` so the SDK never derives ``sagemaker-<region>-<account>`` through its hard-coded
  ``https://sts.<region>.amazonaws.com`` client; the code and driver channels are uploaded under
  ``s3://<bucket>/<prefix>/<base_job_name>/<job>/input/``;
- ``SDK_SOURCE_DIR`` / ``SDK_ENTRY_SCRIPT`` / ``SDK_REQUIREMENTS`` (optional): the ``SourceCode``;
- ``SDK_TRAIN_URI``: the ``training`` channel (an S3 prefix);
- ``SDK_OUTPUT_PATH``: ``OutputDataConfig.S3OutputPath``;
- ``SDK_IMAGE``: the training image URI (never pulled locally; the runtime's Python is the image);
- ``SDK_HYPERPARAMETERS`` (JSON object) and ``SDK_METRIC_DEFINITIONS`` (JSON list of ``{Name, Regex}``), optional.

``SAGEMAKER_VALIDATE_ROLE=false`` must be set for a least-privilege role such as the stack's (see README-sdk.md).
Prints ``SDK_RESULT {json}`` (job name, status, model artifact) as its last line; exit status 0 only if the job
completed.
"""

from __future__ import annotations

import json
import logging
import os
import sys

import boto3
from sagemaker.core.helper.session_helper import Session
from sagemaker.core.shapes import MetricDefinition
from sagemaker.train import ModelTrainer
from sagemaker.train.configs import Compute, InputData, OutputDataConfig, SourceCode, StoppingCondition

# NOTE: the SDK reports every call to https://sm-pysdk-t-<region>.s3.<region>.amazonaws.com (a real AWS endpoint)
# unless this SDK-defaults key is set; a local run must never reach AWS.
SDK_DEFAULTS = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def main() -> int:
    """Train once and report the outcome."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    env = os.environ
    boto_session = boto3.Session(region_name=env["AWS_DEFAULT_REGION"])
    session = Session(
        boto_session=boto_session,
        default_bucket=env["SDK_BUCKET"],
        default_bucket_prefix=env.get("SDK_BUCKET_PREFIX") or None,
        sagemaker_config=SDK_DEFAULTS,
    )
    trainer = ModelTrainer(
        training_image=env["SDK_IMAGE"],
        role=env["SDK_ROLE_ARN"],
        sagemaker_session=session,
        base_job_name=env.get("SDK_BASE_JOB_NAME", "sdk3-tiny"),
        source_code=SourceCode(
            source_dir=env["SDK_SOURCE_DIR"],
            entry_script=env["SDK_ENTRY_SCRIPT"],
            requirements=env.get("SDK_REQUIREMENTS") or None,
        ),
        compute=Compute(instance_type="ml.m5.large", instance_count=1),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=600),
        output_data_config=OutputDataConfig(s3_output_path=env["SDK_OUTPUT_PATH"]),
        hyperparameters=json.loads(env.get("SDK_HYPERPARAMETERS") or "{}"),
        input_data_config=[InputData(channel_name="training", data_source=env["SDK_TRAIN_URI"])],
    )
    definitions = json.loads(env.get("SDK_METRIC_DEFINITIONS") or "[]")
    if definitions:
        trainer = trainer.with_metric_definitions(
            [MetricDefinition(name=d["Name"], regex=d["Regex"]) for d in definitions]
        )
    trainer.train(wait=True, logs=True)
    job = trainer._latest_training_job
    job.refresh()
    result = {
        "TrainingJobName": job.training_job_name,
        "TrainingJobStatus": job.training_job_status,
        "S3ModelArtifacts": job.model_artifacts.s3_model_artifacts,
    }
    print("SDK_RESULT " + json.dumps(result), flush=True)
    return 0 if job.training_job_status == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main())
