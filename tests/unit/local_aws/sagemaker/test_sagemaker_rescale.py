"""local_aws.sagemaker.endpoints: deploying and rescaling fleets with a launcher that starts no process; threads.

UpdateEndpointWeightsAndCapacities (and so autoscaling) changes a deployed fleet in place: the instances serving
keep serving, only the difference is started or stopped, and the weights change.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any, cast

import pytest

from local_aws.sagemaker.endpoints import Endpoints
from local_aws.sagemaker.fleet import DeployError, Fleet, Instance, Launcher
from local_aws.sagemaker.models import Models
from local_aws.sagemaker.records import RecordStore


class FakeLauncher(Launcher):
    """Instances without processes: starting, health checks and stops are only recorded."""

    def __init__(self, root: Path, fail_variant: str | None = None) -> None:
        self.root = root
        self.closing = threading.Event()
        self.fail_variant = fail_variant
        self.started: list[Instance] = []
        self.stopped: list[Instance] = []

    def model_dir(self, endpoint: str, snapshot: dict[str, Any], variant: dict[str, Any]) -> Path:
        return self.root / variant["VariantName"]

    def start(self, endpoint: str, snapshot: dict[str, Any], variant: dict[str, Any], model_dir: Path) -> Instance:
        proc = cast(subprocess.Popen[bytes], object())
        instance = Instance(variant["VariantName"], proc, 1000 + len(self.started), self.root / "log")
        self.started.append(instance)
        return instance

    def wait_healthy(self, instances: list[Instance], timeout: float, variant: str) -> None:
        if variant == self.fail_variant:
            raise DeployError(f"{variant} did not pass the ping health check")

    def stop_all(self, instances: list[Instance]) -> None:
        self.stopped.extend(instances)


SNAPSHOT: dict[str, Any] = {
    "config": {
        "EndpointConfigName": "cfg",
        "ProductionVariants": [
            {"VariantName": "A", "ModelName": "m", "InitialInstanceCount": 1, "InitialVariantWeight": 1.0},
            {"VariantName": "B", "ModelName": "m", "InitialVariantWeight": 3.0},
        ],
    },
    "models": {"m": {"PrimaryContainer": {"Image": "local"}}},
    "id": "1",
}


def _endpoint(tmp_path: Path, launcher: FakeLauncher) -> tuple[Endpoints, Fleet]:
    records = RecordStore(tmp_path / "state")
    endpoints = Endpoints(records, cast(Models, None), launcher)
    records.put("endpoints", "ep", {"EndpointName": "ep", "EndpointStatus": "Creating", "CreationTime": 0.0})
    endpoints._deploy("ep", SNAPSHOT, None)
    return endpoints, endpoints._fleets["ep"]


def test_deploy_starts_each_variants_instances_and_weights(tmp_path: Path) -> None:
    """InitialInstanceCount instances per variant (1 when unset), weighted by InitialVariantWeight."""
    launcher = FakeLauncher(tmp_path)
    endpoints, fleet = _endpoint(tmp_path, launcher)
    assert [i.variant for i in fleet.instances] == ["A", "B"]
    assert fleet.weights == {"A": 1.0, "B": 3.0}
    views = endpoints.records.get("endpoints", "ep")["ProductionVariants"]  # type: ignore[index]
    assert [(v["DesiredInstanceCount"], v["CurrentInstanceCount"]) for v in views] == [(1, 1), (1, 1)]


def test_rescale_keeps_the_serving_instances_and_starts_or_stops_only_the_difference(tmp_path: Path) -> None:
    launcher = FakeLauncher(tmp_path)
    endpoints, fleet = _endpoint(tmp_path, launcher)
    first_a, first_b = fleet.instances
    endpoints._rescale("ep", [{"VariantName": "A", "DesiredInstanceCount": 3, "DesiredWeight": 2.0}])
    grown = endpoints._fleets["ep"]
    assert grown is fleet  # changed in place: the health monitor keeps supervising the same fleet
    assert grown.instances[:2] == [first_a, first_b] and [i.variant for i in grown.instances[2:]] == ["A", "A"]
    assert grown.desired == {"A": 3, "B": 1}
    added = grown.instances[2:]
    assert grown.weights == {"A": 2.0, "B": 3.0} and launcher.stopped == []
    record = endpoints.records.get("endpoints", "ep")
    assert record is not None and record["EndpointStatus"] == "InService"
    assert record["ProductionVariants"][0]["DesiredInstanceCount"] == 3
    endpoints._rescale("ep", [{"VariantName": "A", "DesiredInstanceCount": 1}])
    shrunk = endpoints._fleets["ep"]
    assert shrunk.instances == [first_a, first_b]
    assert launcher.stopped == added and shrunk.desired == {"A": 1, "B": 1}


def test_a_failed_rescale_stops_what_it_started_and_keeps_the_fleet(tmp_path: Path) -> None:
    launcher = FakeLauncher(tmp_path)
    endpoints, fleet = _endpoint(tmp_path, launcher)
    launcher.fail_variant = "B"
    endpoints._rescale(
        "ep", [{"VariantName": "A", "DesiredInstanceCount": 2}, {"VariantName": "B", "DesiredInstanceCount": 2}]
    )
    assert endpoints._fleets["ep"] is fleet
    assert [i.variant for i in launcher.stopped] == ["A", "B"]  # the new instances of both variants
    record = endpoints.records.get("endpoints", "ep")
    assert record is not None and record["EndpointStatus"] == "InService"
    assert record["FailureReason"] == "B did not pass the ping health check"


@pytest.mark.parametrize("fail", ["A", "B"])
def test_a_failed_deploy_stops_every_instance_it_started(tmp_path: Path, fail: str) -> None:
    launcher = FakeLauncher(tmp_path, fail_variant=fail)
    records = RecordStore(tmp_path / "state")
    endpoints = Endpoints(records, cast(Models, None), launcher)
    records.put("endpoints", "ep", {"EndpointName": "ep", "EndpointStatus": "Creating", "CreationTime": 0.0})
    endpoints._deploy("ep", SNAPSHOT, None)
    assert "ep" not in endpoints._fleets
    assert launcher.stopped == launcher.started and len(launcher.started) == 2
    assert records.get("endpoints", "ep")["EndpointStatus"] == "Failed"  # type: ignore[index]


def test_finished_deployment_threads_are_not_kept(tmp_path: Path) -> None:
    """_spawn keeps only the threads still running (shutdown joins those), not one per call forever."""
    endpoints = Endpoints(RecordStore(tmp_path / "state"), cast(Models, None), FakeLauncher(tmp_path))
    release = threading.Event()
    endpoints._spawn(lambda name: release.wait(5), "slow")
    for index in range(5):
        endpoints._spawn(lambda name: None, f"quick-{index}")
        endpoints._threads[-1].join(timeout=5)
    endpoints._spawn(lambda name: None, "last")
    assert [t.name for t in endpoints._threads][:1] == ["endpoint-slow"] and len(endpoints._threads) <= 2
    release.set()
