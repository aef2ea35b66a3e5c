"""The CreateTrainingJob form the SDK v3 ModelTrainer sends, made with boto3 (no SDK venv needed).

``ContainerEntrypoint=["/bin/bash"]`` + ``ContainerArguments=["-c", "chmod +x /opt/ml/input/data/sm_drivers/sm_train.sh
&& /opt/ml/input/data/sm_drivers/sm_train.sh"]`` (sagemaker-train 1.27.0 ``sagemaker/train/constants.py``), with
an ``sm_drivers`` channel that holds the script: on two hosts, each host's command and script must address its own
/opt/ml, and ``python3``/``pip3`` must be the runtime's interpreter (what the "image" provides locally).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from tests.integration.local_aws_fixtures import Aws
from tests.integration.sdk.sdk_helpers import TRAINING_IMAGE, SdkStack, read_tar, s3_bytes

# A stand-in for the SDK's sm_train.sh: same shebang, same /opt/ml paths, same interpreter lookup (templates.py).
SM_TRAIN = """#!/bin/bash
set -e
SM_PYTHON_CMD=$(command -v python3 || command -v python)
SM_PIP_CMD=$(command -v pip3 || command -v pip)
cd /opt/ml/input/data/code
"$SM_PYTHON_CMD" - "$0" "$SM_PIP_CMD" <<'EOF'
import json, os, sys
doc = {"script": sys.argv[1], "pip": sys.argv[2], "prefix": sys.prefix, "cwd": os.getcwd(),
       "code": open("/opt/ml/input/data/code/hello.txt").read()}
with open("/opt/ml/model/" + os.environ["CURRENT_HOST"] + ".json", "w") as handle:
    json.dump(doc, handle)
print("FORM loss=0.25", flush=True)
EOF
"""
ARGUMENTS = ["-c", "chmod +x /opt/ml/input/data/sm_drivers/sm_train.sh && /opt/ml/input/data/sm_drivers/sm_train.sh"]


def _wait(sm: Any, name: str, timeout_s: float = 120) -> dict[str, Any]:
    """DescribeTrainingJob once the job is terminal (the boto3 waiter raises on Failed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = dict(sm.describe_training_job(TrainingJobName=name))
        if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped") or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


def _channel(name: str, uri: str) -> dict[str, Any]:
    source = {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}
    return {"ChannelName": name, "DataSource": {"S3DataSource": source}, "InputMode": "File"}


def test_container_entrypoint_form_relocates_per_host_and_runs_the_runtimes_python(
    local_aws: Aws, sdk_stack: SdkStack
) -> None:
    """Both hosts run their own sm_train.sh from their own base dir, with python3 = the runtime's interpreter.

    The relocated command, script text and code channel reach each host; both hosts' model files merge into one
    model.tar.gz, the metric regex sees the script's output, and the job records the form exactly as sent.
    """
    s3 = local_aws.client("s3")
    sm = local_aws.client("sagemaker")
    bucket = sdk_stack.artifact_bucket
    prefix = "code/sdk-form/input"
    s3.put_object(Bucket=bucket, Key=f"{prefix}/sm_drivers/sm_train.sh", Body=SM_TRAIN.encode())
    s3.put_object(Bucket=bucket, Key=f"{prefix}/code/hello.txt", Body=b"from the code channel")
    name = "sdk-form-two-hosts"
    sm.create_training_job(
        TrainingJobName=name,
        RoleArn=sdk_stack.role,
        AlgorithmSpecification={
            "TrainingImage": TRAINING_IMAGE,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["/bin/bash"],
            "ContainerArguments": ARGUMENTS,
            "MetricDefinitions": [{"Name": "form:loss", "Regex": r"FORM loss=([0-9.]+)"}],
        },
        HyperParameters={},
        InputDataConfig=[
            _channel("code", f"s3://{bucket}/{prefix}/code"),
            _channel("sm_drivers", f"s3://{bucket}/{prefix}/sm_drivers"),
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/training-output/sdk-form"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 120},
    )
    job = _wait(sm, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["AlgorithmSpecification"]["ContainerArguments"] == ARGUMENTS
    assert job["FinalMetricDataList"][0]["MetricName"] == "form:loss"
    assert job["FinalMetricDataList"][0]["Value"] == 0.25

    files = read_tar(s3_bytes(s3, job["ModelArtifacts"]["S3ModelArtifacts"]))
    assert sorted(files) == ["algo-1.json", "algo-2.json"]
    for host in ("algo-1", "algo-2"):
        doc = json.loads(files[f"{host}.json"])
        assert doc["script"].endswith(f"/jobs/{name}/{host}/input/data/sm_drivers/sm_train.sh")
        assert doc["cwd"].endswith(f"/jobs/{name}/{host}/input/data/code")
        assert doc["code"] == "from the code channel"
        assert doc["prefix"] == sys.prefix  # no requirements: the runtime's own interpreter
        assert doc["pip"].endswith("/pip3")


def test_model_trainer_form_failure_reason_is_the_scripts_failure_file(local_aws: Aws, sdk_stack: SdkStack) -> None:
    """A failing sm_train.sh fails the job with the text its ERR trap wrote to the (relocated) failure file."""
    s3 = local_aws.client("s3")
    sm = local_aws.client("sagemaker")
    bucket = sdk_stack.artifact_bucket
    prefix = "code/sdk-form-fail/input"
    script = (
        "#!/bin/bash\nset -e\n"
        "trap 'echo \"Training Execution failed. TrainingJob - $TRAINING_JOB_NAME\" >> /opt/ml/output/failure' ERR\n"
        "false\n"
    )
    s3.put_object(Bucket=bucket, Key=f"{prefix}/sm_drivers/sm_train.sh", Body=script.encode())
    name = "sdk-form-failure"
    sm.create_training_job(
        TrainingJobName=name,
        RoleArn=sdk_stack.role,
        AlgorithmSpecification={
            "TrainingImage": TRAINING_IMAGE,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["/bin/bash"],
            "ContainerArguments": ARGUMENTS,
        },
        InputDataConfig=[_channel("sm_drivers", f"s3://{bucket}/{prefix}/sm_drivers")],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/training-output/sdk-form"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 120},
    )
    job = _wait(sm, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == f"AlgorithmError: Training Execution failed. TrainingJob - {name}"
