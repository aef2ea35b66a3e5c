"""ops.chaos: the config make chaos writes is valid for every consumer, and the input runs on spot with 2 instances."""

from __future__ import annotations

import tomllib
from pathlib import Path

from local_aws import chaos as chaos_config
from local_aws.sagemaker import throttle
from local_aws.sagemaker.instance_faults import InstanceFaults
from local_aws.sagemaker.training import spot
from ops import chaos, demo


def test_the_written_config_is_accepted_by_each_fault_it_switches_on(tmp_path: Path) -> None:
    path = chaos.write_config(tmp_path)
    sections = tomllib.loads(path.read_text())["chaos"]
    assert set(sections) == {"throttle", "spot", "endpoint"}
    operations, burst, rate, _ = throttle.parse(chaos_config.section("throttle", tmp_path))
    assert "DescribeTrainingJob" in operations and burst >= 1 and 0 < rate < 1
    assert spot.parse(chaos_config.section("spot", tmp_path)) is not None
    assert InstanceFaults(tmp_path)._read() == (3, 1)


def test_the_chaos_input_is_the_demo_on_spot_with_room_for_a_lost_instance() -> None:
    payload = chaos.chaos_input(demo.execution_input("s3://d/", "s3://c/s.tar.gz", instance_count=2))
    assert payload["Training"]["UseSpot"] is True
    assert payload["Training"]["MaxWaitSeconds"] >= payload["Training"]["MaxRuntimeSeconds"]
    assert (payload["Deploy"]["InitialInstanceCount"], payload["Deploy"]["MinCapacity"]) == (2, 2)
    assert chaos.predictions_line(10, 0).endswith("10 of 10 predictions answered")
