"""Execution tests for the branches the happy-path and failure tests never take (issue 8: every state is executed).

Each test reaches its states for real, through StartExecution on the session's local AWS: a poll budget that a
running job outlives (TrainingTimedOut, TuningTimedOut, then StopTrainingJob/StopTuningJob) or a blue/green bake
outlasts (EndpointTimedOut), a training script that reports no test metric (TestMetricMissing,
TuningFoundNoBestJob), jobs that all fail or are stopped by someone else (TuningFailedWithReason, TuningFailed,
TrainingFailed), and a Stop that Cleanup cannot make ([chaos.throttle]: the Stop tasks' Retry and Catch edges).
test_execution_refusals.py has the branches that SageMaker's refusals take. The ASL coverage report
(tests/asl_coverage_plugin.py) reads these executions with the others. CPU is kept low: every job here is stopped,
fails at its argument check, or runs a script that does no training, except the bake test's 2-step training.
"""

from __future__ import annotations

import pytest

from tests.integration.local_aws.sagemaker.chaos_helpers import ChaosFile
from tests.integration.local_aws_fixtures import serving_endpoint, wait_endpoint
from tests.integration.statemachine.sfn_helpers import (
    Stack,
    metrics,
    quick,
    read_deployment,
    resources,
    run,
    scalable_targets,
    start,
    wait,
)
from tests.integration.statemachine.sfn_probes import (
    TIGHT_POLLING,
    attempts,
    entered,
    scheduled_parameters,
    settled_training,
    settled_tuning,
    small_tuning,
    tuning_job_of,
    until,
    upload_no_test_metric_source,
)

# Exist to take every ASL state and Catch edge; `make test-exhaustive` runs them (they would push CI past 45 min).
pytestmark = pytest.mark.exhaustive


@pytest.fixture(scope="module")
def no_test_metric_source(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The SourceDir URI of a source bundle whose train.py reports no test (or validation) metric."""
    return upload_no_test_metric_source(stack, tmp_path_factory.mktemp("no-test-metric"))


def test_training_past_the_poll_budget_is_stopped(stack: Stack) -> None:
    """A training job still running when Polling.MaxAttempts is spent fails TrainingTimedOut and is stopped."""
    payload = quick(stack, gate=1.0)
    payload["Polling"] = TIGHT_POLLING
    record = run(stack, payload, "train-budget")

    name = stack.job_name("train-budget")
    assert record.status == "FAILED" and record.error == "TrainingTimedOut", record.why
    assert record.cause is not None and record.cause.startswith(f"Training job {name} still running after ")
    assert "Polling.MaxAttempts=1 " in record.cause and record.cause.endswith("so it is being stopped.")
    order = entered(stack, record.arn)
    assert order.count("DescribeTraining") >= 1 and "CreateModel" not in order
    assert order[order.index("TrainingTimedOut") :] == [
        "TrainingTimedOut", "Cleanup", "CleanupTraining", "StopTrainingJob", "CleanupDeployment",
        "ReleaseLockBeforeFailing", "Failed",
    ]  # fmt: skip
    job = settled_training(stack, name)
    assert job["TrainingJobStatus"] == "Stopped"  # StopTrainingJob reached the job, which never completed
    assert "ModelArtifacts" not in job or not metrics(job)


def test_tuning_past_the_poll_budget_is_stopped(stack: Stack) -> None:
    """A tuning job still running when the poll budget is spent fails TuningTimedOut and is stopped, children too."""
    payload = small_tuning(stack)
    payload["Polling"] = TIGHT_POLLING
    record = run(stack, payload, "tune-budget")

    tuning = tuning_job_of(stack, record.arn)
    assert record.status == "FAILED" and record.error == "TuningTimedOut", record.why
    assert record.cause is not None and tuning in record.cause
    order = entered(stack, record.arn)
    assert order[order.index("TuningTimedOut") :] == [
        "TuningTimedOut", "Cleanup", "StopTuningJob", "CleanupTraining", "CleanupDeployment",
        "ReleaseLockBeforeFailing", "Failed",
    ]  # fmt: skip
    assert "CreateTrainingJob" not in order  # no final training without a best job
    job = settled_tuning(stack, tuning)
    assert job["HyperParameterTuningJobStatus"] == "Stopped"
    children = stack.sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning)
    for child in children["TrainingJobSummaries"]:
        assert settled_training(stack, child["TrainingJobName"])["TrainingJobStatus"] in ("Stopped", "Failed")


def test_training_without_a_test_metric_is_rejected(stack: Stack, no_test_metric_source: str) -> None:
    """A job that completes without reporting test:top1 is rejected by the gate, and nothing is deployed."""
    before = read_deployment(stack)
    payload = quick(stack, gate=0.0)
    payload["SourceDir"] = no_test_metric_source
    record = run(stack, payload, "no-test-metric")

    name = stack.job_name("no-test-metric")
    job = stack.sm.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "Completed"
    assert metrics(job) == {"train:loss": 0.75, "train:top1": 0.25}  # metrics were read, just not the gate's
    assert record.status == "FAILED" and record.error == "GateRejected", record.why
    assert record.cause == f"Training job {name} reported no test:top1 metric, so the gate cannot judge it."
    order = entered(stack, record.arn)
    assert order[order.index("CheckTestMetric") :][:4] == ["CheckTestMetric", "ListMetricNames", "HasTestMetric",
                                                          "TestMetricMissing"]  # fmt: skip
    assert "LookupEndpoint" not in order and "CreateModel" not in order
    assert resources(stack.sm, name) == (False, False)
    assert read_deployment(stack) == before


def test_tuning_without_an_objective_metric_finds_no_best_job(stack: Stack, no_test_metric_source: str) -> None:
    """A tuning job whose jobs all complete without the objective metric has no best job: the execution stops."""
    payload = small_tuning(stack)
    payload["SourceDir"] = no_test_metric_source
    record = run(stack, payload, "tune-no-best")

    tuning = settled_tuning(stack, tuning_job_of(stack, record.arn))
    assert tuning["HyperParameterTuningJobStatus"] == "Completed" and "BestTrainingJob" not in tuning
    assert record.status == "FAILED" and record.error == "TuningFailed", record.why
    assert record.cause == (
        f"Tuning job {tuning['HyperParameterTuningJobName']} completed without a best training job"
        " (no job reported kept:top1)."
    )
    order = entered(stack, record.arn)
    assert "TuningFoundNoBestJob" in order and "CreateTrainingJob" not in order
    assert "StopTuningJob" not in order  # a Completed tuning job is not stopped


def test_tuning_whose_jobs_all_fail_fails_with_the_first_reason(stack: Stack) -> None:
    """Every tuning job rejected by train.py: the tuning job fails, and the execution fails with its reason."""
    payload = small_tuning(stack, CategoricalRanges=[{"Name": "learning-rate", "Values": ["-1", "-2"]}])
    record = run(stack, payload, "tune-all-fail")

    tuning = settled_tuning(stack, tuning_job_of(stack, record.arn))
    assert tuning["HyperParameterTuningJobStatus"] == "Failed"
    assert (
        tuning["FailureReason"].startswith("All training jobs failed.") and "--learning-rate" in tuning["FailureReason"]
    )
    assert record.status == "FAILED" and record.error == "TuningFailed", record.why
    assert record.cause == f"Tuning job {tuning['HyperParameterTuningJobName']} failed: {tuning['FailureReason']}"
    assert "TuningFailedWithReason" in entered(stack, record.arn)


def test_tuning_stopped_by_someone_else_fails_the_execution(stack: Stack) -> None:
    """A tuning job stopped from outside ends Stopped; the execution fails TuningFailed and stops nothing itself."""
    payload = small_tuning(stack)
    payload["Polling"] = {"IntervalSeconds": 1, "MaxAttempts": 300}
    arn = start(stack.sfn, stack.machine_arn, payload, "tune-stopped")
    tuning = tuning_job_of(stack, arn)
    until(lambda: stack.sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning))
    stack.sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning)
    record = wait(stack.sfn, arn)

    assert settled_tuning(stack, tuning)["HyperParameterTuningJobStatus"] == "Stopped"
    assert record.status == "FAILED" and record.error == "TuningFailed", record.why
    assert record.cause == f"Tuning job {tuning} ended Stopped."
    order = entered(stack, arn)
    assert "TuningFailed" in order and "StopTuningJob" not in order and "CreateTrainingJob" not in order


def test_training_stopped_by_someone_else_fails_the_execution(stack: Stack) -> None:
    """A training job stopped from outside ends Stopped; the execution fails TrainingFailed and deploys nothing."""
    payload = quick(stack, gate=0.0)
    arn = start(stack.sfn, stack.machine_arn, payload, "train-stopped")
    name = stack.job_name("train-stopped")
    until(lambda: scheduled_parameters(stack, arn, "describeTrainingJob"))  # the job exists and is being polled
    stack.sm.stop_training_job(TrainingJobName=name)
    record = wait(stack.sfn, arn)

    assert settled_training(stack, name)["TrainingJobStatus"] == "Stopped"
    assert record.status == "FAILED" and record.error == "TrainingFailed", record.why
    assert record.cause is not None and record.cause.startswith(f"Training job {name} ended Stopped (")
    order = entered(stack, arn)
    assert "TrainingFailed" in order and "StopTrainingJob" not in order and "CreateModel" not in order
    assert resources(stack.sm, name) == (False, False)


@pytest.mark.slow
def test_an_update_still_baking_when_the_poll_budget_runs_out_times_out(fresh: Stack) -> None:
    """A blue/green update that bakes longer than the poll budget fails EndpointTimedOut; SageMaker finishes it anyway.

    The endpoint is Updating through the whole bake (SageMaker's deployment guardrails), so the last poll still reads
    Updating; Cleanup keeps the config the endpoint is moving to. Nothing stops the deployment: once the bake is over
    the endpoint serves the new model, with no autoscaling and no accuracy record, which the cause warns about only
    by naming the budget. The budget (18 polls of 10 s, shared by the training and the endpoint waits) leaves room for
    the 2-step training job (40-55 s measured with the 2 cores busy); the bake (300 s) outlasts what is left (at
    most 17 polls of 10 s, plus the calls' own latency; a 180 s bake was seen to end before the test could read it).
    """
    stack = fresh
    # Named under the stack's prefix: the state machine role may read only those (template.yaml, IAM enforced).
    with serving_endpoint(stack.aws, stack.endpoint, f"{stack.prefix}-baking") as created:
        assert created
        blue = stack.sm.describe_endpoint(EndpointName=stack.endpoint)["EndpointConfigName"]
        payload = quick(stack, gate=0.0)
        payload["Deploy"] = {**payload["Deploy"], "BakeSeconds": 300}
        payload["Polling"] = {"IntervalSeconds": 10, "MaxIntervalSeconds": 10, "MaxAttempts": 18}
        record = run(stack, payload, "bake-outlives-budget", timeout=600)

        name = stack.job_name("bake-outlives-budget")
        assert stack.sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Completed"
        assert record.status == "FAILED" and record.error == "EndpointTimedOut", record.why
        assert record.cause is not None and "Polling.MaxAttempts=18" in record.cause
        order = entered(stack, record.arn)
        assert "UpdateEndpoint" in order and "RegisterScalableTarget" not in order
        assert order[order.index("EndpointTimedOut") :][-5:] == ["RestoreScalingNeeded", "ConfigStillReferenced",
                                                                 "ReleaseLockBeforeFailing",
                                                                 "ReleaseDeployLockAfterFailure", "Failed"]  # fmt: skip
        during = stack.sm.describe_endpoint(EndpointName=stack.endpoint)
        assert (during["EndpointStatus"], during["EndpointConfigName"]) == ("Updating", blue)
        assert resources(stack.sm, name) == (True, True)  # the endpoint is moving onto them: kept
        after = wait_endpoint(stack.sm, stack.endpoint, timeout_s=300)
        assert (after["EndpointStatus"], after["EndpointConfigName"]) == ("InService", name)
        assert read_deployment(stack) is None and scalable_targets(stack) == []


@pytest.mark.parametrize(
    ("kind", "operation", "stop_state"),
    [("training", "StopTrainingJob", "StopTrainingJob"), ("tuning", "StopHyperParameterTuningJob", "StopTuningJob")],
)
def test_a_throttled_stop_is_given_up_and_the_job_keeps_running(
    stack: Stack, kind: str, operation: str, stop_state: str
) -> None:
    """Cleanup's Stop call throttled at every try ([chaos.throttle]): retried, then given up; the execution still
    fails with the timeout that sent it to Cleanup, and the job it could not stop is still running."""
    payload = quick(stack, gate=1.0) if kind == "training" else small_tuning(stack)
    if kind == "training":
        # A job that outlives Cleanup's four throttled tries (up to ~14 s of backoff): the 2-step one can end first.
        payload["Hyperparameters"] = {**payload["Hyperparameters"], "epochs": "1000", "patience": "0"}
    payload["Polling"] = TIGHT_POLLING
    execution = f"{kind}-stop-throttled"
    chaos = ChaosFile(stack.aws.home)
    chaos.write(f'[chaos.throttle]\noperations = ["{operation}"]\nrate = 1.0\n')
    try:
        record = run(stack, payload, execution)
    finally:
        chaos.remove()

    assert record.status == "FAILED" and record.error == f"{kind.capitalize()}TimedOut", record.why
    assert attempts(stack, record.arn, f"{operation[0].lower()}{operation[1:]}") == 4  # the call and 3 retries
    order = entered(stack, record.arn)
    assert order[order.index(stop_state) :][:2] == [stop_state, "CleanupTraining" if kind == "tuning" else
                                                    "CleanupDeployment"]  # fmt: skip
    if kind == "training":
        name = stack.job_name(execution)
        assert stack.sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"
        stack.sm.stop_training_job(TrainingJobName=name)  # the throttle is over: stop it by hand
        assert settled_training(stack, name)["TrainingJobStatus"] == "Stopped"
    else:
        tuning = tuning_job_of(stack, record.arn)
        assert stack.sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning)[
            "HyperParameterTuningJobStatus"] == "InProgress"  # fmt: skip
        stack.sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning)
        assert settled_tuning(stack, tuning)["HyperParameterTuningJobStatus"] == "Stopped"
