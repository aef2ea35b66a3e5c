"""ops.phases: the seven phases read off the real ASL, so a new Task without a phase fails here, not in a demo."""

from __future__ import annotations

import pytest

from local_aws.constants import ASL_PATH
from ops.phases import CLEANUP, PHASES, PhaseMap, PhaseTracker, phase_label


@pytest.fixture(scope="module")
def phases() -> PhaseMap:
    return PhaseMap.from_file(ASL_PATH)


def test_every_task_of_the_asl_has_a_phase(phases: PhaseMap) -> None:
    """A Task calling an action ACTION_PHASES does not place (and not on the cleanup path) would show no phase."""
    assert phases.actions, "the ASL has Tasks"
    assert phases.unplaced_actions() == set()


def test_everything_reachable_from_cleanup_is_cleanup(phases: PhaseMap) -> None:
    """The failure path's Stop*/Delete* and restore states are cleanup, never deploy or scale."""
    for name in ("Cleanup", "StopTrainingJob", "DeleteModel", "Failed"):
        assert phases.fixed[name] == CLEANUP
    assert phases.fixed["CreateTrainingJob"] == "train"
    assert phases.fixed.get("Deployed") != CLEANUP  # the success path is not reachable from Cleanup


def test_phases_move_forward_only(phases: PhaseMap) -> None:
    """The deploy loop's DescribeEndpoint is the gate's action too; it must not move the display back to gate."""
    tracker = PhaseTracker(phases)
    started = [tracker.enter(s) for s in ("ValidateInput", "NameResources", "CreateTrainingJob", "LookupEndpoint",
                                          "CreateEndpoint", "DescribeEndpoint", "RegisterScalableTarget")]  # fmt: skip
    assert [p for p in started if p] == ["validate", "train", "gate", "deploy", "scale"]
    assert tracker.enter("Cleanup") == CLEANUP  # the failure path may start in any phase


def test_labels_number_the_phases() -> None:
    assert [phase_label(p) for p in PHASES[:2]] == ["[1/7] validate", "[2/7] tune"]
    assert phase_label(CLEANUP) == "cleanup"
