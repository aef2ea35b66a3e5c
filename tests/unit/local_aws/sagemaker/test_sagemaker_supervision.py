"""local_aws.sagemaker.{fleet,health,bluegreen,metrics}: routing around unhealthy instances, replacing them, the
blue/green traffic plan and its alarm rollback, and the per-variant metrics as moto's CloudWatch stores them.

No process is started: instances are fakes whose ``poll`` and ping answers the test sets.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from moto import mock_aws

from local_aws.sagemaker import bluegreen, metrics
from local_aws.sagemaker.endpoint_views import retain_variant_properties
from local_aws.sagemaker.errors import RuntimeApiError, SageMakerError
from local_aws.sagemaker.fleet import DeployError, Fleet, Instance, Launcher, instance_count
from local_aws.sagemaker.health import FAILURE_THRESHOLD, HealthMonitor

SNAPSHOT: dict[str, Any] = {
    "config": {
        "EndpointConfigName": "cfg",
        "ProductionVariants": [{"VariantName": "A", "ModelName": "m", "InitialInstanceCount": 2}],
    },
    "models": {"m": {"PrimaryContainer": {"Image": "local"}}},
    "id": "1",
}


class FakeProc:
    def __init__(self) -> None:
        self.code: int | None = None

    def poll(self) -> int | None:
        return self.code


class FakeLauncher(Launcher):
    """Instances without processes; ``answers`` maps a port to whether its ping passes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.closing = threading.Event()
        self.answers: dict[int, bool] = {}
        self.started: list[Instance] = []
        self.stopped: list[Instance] = []
        self.healthy_after_start = True

    def model_dir(self, endpoint: str, snapshot: dict[str, Any], variant: dict[str, Any]) -> Path:
        return self.root

    def start(self, endpoint: str, snapshot: dict[str, Any], variant: dict[str, Any], model_dir: Path) -> Instance:
        instance = Instance(variant["VariantName"], cast(Any, FakeProc()), 2000 + len(self.started), self.root)
        self.started.append(instance)
        return instance

    def wait_healthy(self, instances: list[Instance], timeout: float, variant: str) -> None:
        if not self.healthy_after_start:
            raise DeployError("the replacement did not pass the ping health check")

    def ping(self, instance: Instance) -> bool:  # type: ignore[override]
        return self.answers.get(instance.port, True)

    def stop_all(self, instances: list[Instance]) -> None:
        self.stopped.extend(instances)


def _fleet(launcher: FakeLauncher) -> Fleet:
    return Fleet.serving(
        [launcher.start("ep", SNAPSHOT, SNAPSHOT["config"]["ProductionVariants"][0], launcher.root) for _ in range(2)],
        SNAPSHOT,
    )


def _settle(monitor: HealthMonitor, fleet: Fleet) -> None:
    """Run one round, then let the replacement threads finish."""
    monitor.check("ep", fleet)
    for thread in threading.enumerate():
        if thread.name.startswith(("replace-", "retire-")):
            thread.join(timeout=5)


def test_zero_instances_is_a_count_not_unset() -> None:
    """DesiredInstanceCount is a TaskCount (min 0) in botocore's model: 0 must not turn into 1."""
    assert instance_count({"InitialInstanceCount": 0}) == 0
    assert instance_count({}) == 1


def test_routing_skips_unhealthy_instances_and_fails_fast_with_none() -> None:
    launcher = FakeLauncher(Path("."))
    fleet = _fleet(launcher)
    first, second = fleet.instances
    first.healthy = False
    assert {fleet.pick(None).port for _ in range(6)} == {second.port}
    assert fleet.count("A") == 1
    second.healthy = False
    with pytest.raises(RuntimeApiError) as caught:
        fleet.pick(None)
    assert (caught.value.code, caught.value.status) == ("ServiceUnavailable", 503)
    assert caught.value.message == "The service is unavailable. Try your call again."


def test_a_dead_process_is_replaced_in_one_round(tmp_path: Path) -> None:
    launcher = FakeLauncher(tmp_path)
    fleet = _fleet(launcher)
    dead, alive = fleet.instances
    cast(FakeProc, dead.proc).code = -9
    monitor = HealthMonitor(launcher, threading.RLock(), lambda: [("ep", fleet)], lambda: None)
    _settle(monitor, fleet)
    assert dead not in fleet.instances and launcher.stopped == [dead]
    assert alive in fleet.instances and len(fleet.instances) == 2 and fleet.count("A") == 2
    assert fleet.starting == []


def test_a_hung_instance_is_replaced_after_the_failure_threshold(tmp_path: Path) -> None:
    launcher = FakeLauncher(tmp_path)
    fleet = _fleet(launcher)
    hung = fleet.instances[0]
    launcher.answers[hung.port] = False
    monitor = HealthMonitor(launcher, threading.RLock(), lambda: [("ep", fleet)], lambda: None)
    for _ in range(FAILURE_THRESHOLD - 1):
        _settle(monitor, fleet)
    assert hung in fleet.instances and hung.healthy and len(launcher.started) == 2
    _settle(monitor, fleet)
    assert hung not in fleet.instances and launcher.stopped == [hung] and fleet.count("A") == 2


def test_a_replacement_that_fails_is_stopped_and_retried(tmp_path: Path) -> None:
    launcher = FakeLauncher(tmp_path)
    fleet = _fleet(launcher)
    cast(FakeProc, fleet.instances[0].proc).code = 1
    launcher.healthy_after_start = False
    monitor = HealthMonitor(launcher, threading.RLock(), lambda: [("ep", fleet)], lambda: None)
    _settle(monitor, fleet)
    assert fleet.count("A") == 1 and fleet.starting == [] and launcher.stopped[-1] is launcher.started[-1]
    launcher.healthy_after_start = True
    _settle(monitor, fleet)
    assert fleet.count("A") == 2


def test_a_retired_fleet_gets_no_replacement(tmp_path: Path) -> None:
    launcher = FakeLauncher(tmp_path)
    fleet = _fleet(launcher)
    fleet.retired = True
    cast(FakeProc, fleet.instances[0].proc).code = -9
    _settle(HealthMonitor(launcher, threading.RLock(), lambda: [("ep", fleet)], lambda: None), fleet)
    assert len(launcher.started) == 2


# ----------------------------------------------------------------------------------------------- blue/green plans
def _policy(kind: str, wait: int = 0, **routing: Any) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": kind, "WaitIntervalInSeconds": wait, **routing}
        }
    }


def test_traffic_plans() -> None:
    assert bluegreen.plan(None, 1).shares == [1.0]
    assert bluegreen.plan(_policy("ALL_AT_ONCE", 300), 2).shares == [1.0]
    canary = bluegreen.plan(_policy("CANARY", 60, CanarySize={"Type": "CAPACITY_PERCENT", "Value": 25}), 1)
    assert canary.shares == [0.25, 1.0] and canary.bake_s == 60
    assert bluegreen.plan(_policy("CANARY", 60, CanarySize={"Type": "INSTANCE_COUNT", "Value": 1}), 4).shares == [
        0.25,
        1.0,
    ]
    linear = bluegreen.plan(_policy("LINEAR", 10, LinearStepSize={"Type": "CAPACITY_PERCENT", "Value": 30}), 1)
    assert linear.shares == pytest.approx([0.3, 0.6, 0.9, 1.0])


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        (_policy("CANARY", 1, CanarySize={"Type": "INSTANCE_COUNT", "Value": 3}), "CanarySize must be at most 50%"),
        (_policy("CANARY", 1), "CanarySize is required"),
        (_policy("LINEAR", 1, LinearStepSize={"Type": "CAPACITY_PERCENT", "Value": 60}), "between 10% and 50%"),
        ({"RollingUpdatePolicy": {"MaximumBatchSize": {}, "WaitIntervalInSeconds": 1}}, "RollingUpdatePolicy"),
    ],
)
def test_bad_plans_are_validation_errors(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SageMakerError) as caught:
        bluegreen.plan(config, 4)
    assert caught.value.code == "ValidationException" and fragment in caught.value.message


def _bake(monkeypatch: pytest.MonkeyPatch, plan: bluegreen.Plan, states: list[list[str]]) -> tuple[list[Any], Any]:
    monkeypatch.setenv("LOCAL_AWS_TIME_SCALE", "600")  # a 60 s bake lasts 0.1 s
    seen: list[Any] = []
    answers = iter(states)
    last: list[str] = []

    def alarms(names: list[str]) -> list[str]:
        nonlocal last
        last = next(answers, last)
        return last

    bake = bluegreen.Bake(plan, lambda s: seen.append(s), lambda s: seen.append(s), alarms, threading.Event())
    return seen, bake


def test_a_bake_with_quiet_alarms_shifts_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = bluegreen.Plan([0.25, 1.0], 60, 30, 3600, ["errors"])
    seen, bake = _bake(monkeypatch, plan, [[]])
    bake.run()
    assert seen == ["ActivatingTraffic", 0.25, "Baking", "ActivatingTraffic", 1.0, "Baking"]


def test_an_alarm_during_the_bake_rolls_back_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = bluegreen.Plan([0.25, 1.0], 600, 0, 3600, ["errors", "latency"])  # 1 s per bake: ~10 polls
    seen, bake = _bake(monkeypatch, plan, [[], [], ["latency"]])
    with pytest.raises(bluegreen.RolledBack, match="alarm\\(s\\) went into the ALARM state: latency"):
        bake.run()
    assert 1.0 not in seen  # the canary never became the whole traffic


def test_the_execution_timeout_rolls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    _, bake = _bake(monkeypatch, bluegreen.Plan([1.0], 900, 0, 600, []), [[]])
    with pytest.raises(bluegreen.RolledBack, match="MaximumExecutionTimeoutInSeconds \\(600 seconds\\)"):
        bake.run()


# ----------------------------------------------------------------------------------------------- metrics
def test_one_minute_of_invocations_as_cloudwatch_returns_it() -> None:
    """Published into moto's CloudWatch backend, read back with GetMetricStatistics through boto3 (moto's mock)."""
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        collected = metrics.InvocationMetrics(metrics.publish_to_moto)
        for status in (200, 200, 400, 500, 0):
            collected.record("ep", "AllTraffic", 2, status, 1500.0, 100.0)
        collected.record("ep", "Other", 1, 200, 10.0, 1.0)
        collected.flush()

        def stats(name: str, variant: str = "AllTraffic") -> dict[str, Any]:
            points = cloudwatch.get_metric_statistics(
                Namespace="AWS/SageMaker",
                MetricName=name,
                Dimensions=[{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": variant}],
                StartTime=time.time() - 300,
                EndTime=time.time() + 60,
                Period=60,
                Statistics=["Sum", "SampleCount"],
            )["Datapoints"]
            assert len(points) == 1, (name, points)
            point: dict[str, Any] = points[0]
            return point

        assert stats("Invocations")["Sum"] == 5 and stats("Invocations", "Other")["Sum"] == 1
        assert stats("InvocationsPerInstance")["Sum"] == pytest.approx(2.5)
        assert stats("Invocation4XXErrors")["Sum"] == 1
        assert stats("Invocation5XXErrors")["Sum"] == 2  # a 500, and a request no container answered (status 0)
        latency = stats("ModelLatency")
        assert latency["Sum"] == 7500 and latency["Unit"] == "Microseconds"
        collected.flush()  # an empty minute publishes nothing
        assert stats("Invocations")["SampleCount"] == 5


def test_retain_all_variant_properties_keeps_the_endpoints_counts_unless_excluded() -> None:
    """UpdateEndpoint RetainAllVariantProperties: a scaled-out variant keeps its DesiredInstanceCount (issue 8 #1)."""
    record = {"ProductionVariants": [{"VariantName": "A", "DesiredInstanceCount": 3, "DesiredWeight": 2.0}]}
    kept: dict[str, Any] = {"config": {"ProductionVariants": [{"VariantName": "A", "InitialInstanceCount": 1}]}}
    retain_variant_properties(kept, record, [])
    assert kept["config"]["ProductionVariants"][0] == {
        "VariantName": "A",
        "InitialInstanceCount": 3,
        "InitialVariantWeight": 2.0,
    }
    excluded: dict[str, Any] = {"config": {"ProductionVariants": [{"VariantName": "A", "InitialInstanceCount": 1}]}}
    retain_variant_properties(excluded, record, [{"VariantPropertyType": "DesiredInstanceCount"}])
    assert excluded["config"]["ProductionVariants"][0]["InitialInstanceCount"] == 1
