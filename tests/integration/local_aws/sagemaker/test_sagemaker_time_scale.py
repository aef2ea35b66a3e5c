"""LOCAL_AWS_TIME_SCALE in the local SageMaker: durations reported, MaxRuntimeInSeconds and the stop grace in AWS time.

At 3600 AWS seconds per real second, a job that runs a few real seconds reports hours, and a MaxRuntimeInSeconds is
enforced in AWS seconds: larger than the scaled run, the job completes; smaller, it is stopped on time.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from sagemaker_helpers import Stack, job_request, put_source, wait_for, wait_job

from local_aws.clock import ENV_TIME_SCALE

pytestmark = pytest.mark.slow
# A host that ignores SIGTERM, so only the SIGKILL at the end of the stop grace ends it.
DEAF = (
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(600)\n"
)


def test_a_scaled_job_reports_aws_seconds_and_completes_under_a_larger_max_runtime(
    sm: Any, stack: Stack, tiny_source: str, tiny_data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_TIME_SCALE, "3600")
    name = f"scaled-ok-{int(time.time())}"
    request = job_request(stack, name, tiny_source, tiny_data, epochs="4", sleep="1")
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": 259_200}  # 72 h: 72 real seconds at this scale
    sm.create_training_job(**request)
    job = wait_job(sm, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    real = (job["TrainingEndTime"] - job["TrainingStartTime"]).total_seconds()
    assert job["TrainingTimeInSeconds"] >= 4 * 3600  # four 1-s epochs at least
    assert abs(job["TrainingTimeInSeconds"] - real * 3600) <= 3600  # the real span, scaled (timestamps stay real)
    assert job["BillableTimeInSeconds"] == job["TrainingTimeInSeconds"]  # on demand: every second is billed


def test_max_runtime_in_aws_seconds_stops_a_scaled_job_on_time(
    sm: Any, stack: Stack, tiny_source: str, tiny_data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_TIME_SCALE, "3600")
    name = f"scaled-max-{int(time.time())}"
    request = job_request(stack, name, tiny_source, tiny_data, epochs="60", sleep="1")
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": 36_000}  # 10 real seconds
    sm.create_training_job(**request)
    job = wait_job(sm, name)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert 36_000 <= job["TrainingTimeInSeconds"] < 36_000 + 5 * 3600


def test_the_stop_grace_is_aws_120_seconds_in_scaled_time(
    sm: Any, s3: Any, stack: Stack, tiny_data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 60 AWS seconds per second the 120-s grace lasts 2 real seconds: a SIGTERM-deaf host dies by SIGKILL then."""
    monkeypatch.setenv(ENV_TIME_SCALE, "60")
    monkeypatch.delenv("LOCAL_SAGEMAKER_STOP_GRACE", raising=False)
    source = put_source(s3, stack.artifact_bucket, "tests/sagemaker/code/deaf/sourcedir.tar.gz", {"deaf.py": DEAF})
    name = f"stop-grace-{int(time.time())}"
    sm.create_training_job(**job_request(stack, name, source, tiny_data, program="deaf.py"))
    wait_for(lambda: sm.describe_training_job(TrainingJobName=name)["SecondaryStatus"], lambda s: s == "Training")
    time.sleep(1)  # the host is past its signal() call
    started = time.monotonic()
    sm.stop_training_job(TrainingJobName=name)
    job = wait_for(
        lambda: sm.describe_training_job(TrainingJobName=name),
        lambda j: j["TrainingJobStatus"] == "Stopped",
        timeout=60,
    )
    took = time.monotonic() - started
    assert job["SecondaryStatus"] == "Stopped"
    assert 2.0 <= took < 8.0  # 120 AWS s scaled; not the old fixed 10 real seconds


def test_a_tuning_jobs_max_runtime_is_aws_seconds(
    sm: Any, stack: Stack, tiny_source: str, tiny_data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ResourceLimits.MaxRuntimeInSeconds = 120 (botocore's minimum) lasts 2 real seconds at 60 AWS seconds each."""
    monkeypatch.setenv(ENV_TIME_SCALE, "60")
    name = f"scaled-tune-{int(time.time())}"
    definition = job_request(stack, "unused", tiny_source, tiny_data, epochs="30", sleep="1")
    definition.pop("TrainingJobName")
    definition["StaticHyperParameters"] = definition.pop("HyperParameters")
    definition["StoppingCondition"] = {"MaxRuntimeInSeconds": 86_400}
    started = time.monotonic()
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": "Grid",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "valid:top1"},
            "ResourceLimits": {"MaxParallelTrainingJobs": 1, "MaxRuntimeInSeconds": 120},
            "ParameterRanges": {"CategoricalParameterRanges": [{"Name": "scale", "Values": ["0.5", "2"]}]},
        },
        TrainingJobDefinition=definition,
    )
    done = wait_for(
        lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
        lambda d: d["HyperParameterTuningJobStatus"] != "InProgress",
        timeout=60,
        every=0.5,
    )
    assert time.monotonic() - started < 20  # 2 real seconds plus the trial's stop, not 120 s
    assert done["TrainingJobStatusCounters"]["Stopped"] >= 1
