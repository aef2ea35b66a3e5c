"""The pipeline's phases, read off the ASL: what ``up`` and ``watch`` show instead of ~100 internal state names.

A user thinks in seven phases (validate, tune, train, gate, deploy, scale, record), plus cleanup when something
fails. The ASL has no such grouping, and hand-listing its state names here would rot with every ASL change, so the
phase of a state is derived from the definition itself:

- a Task's phase comes from the API action it calls (``createTrainingJob`` → train, ``updateEndpoint`` → deploy);
  ``tests/unit/ops/test_ops_phases.py`` fails when the ASL calls an action this table does not place;
- every state reachable from ``Cleanup`` is cleanup;
- any other state (Pass, Choice, Wait, the ValidateInput branch) belongs to the phase the execution is in. Phases
  only move forward, so the deploy loop's DescribeEndpoint stays in deploy although the same action looks the
  serving model up in the gate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PHASES = ("validate", "tune", "train", "gate", "deploy", "scale", "record")
CLEANUP = "cleanup"
CLEANUP_STATE = "Cleanup"

# The aws-sdk action (last part of the Task's Resource) → the phase it belongs to.
ACTION_PHASES: Mapping[str, str] = {
    "createHyperParameterTuningJob": "tune",
    "describeHyperParameterTuningJob": "tune",
    "createTrainingJob": "train",
    "describeTrainingJob": "train",
    # The gate reads what serves now: the endpoint, its config, its autoscaling and its recorded accuracy.
    "describeEndpoint": "gate",
    "describeEndpointConfig": "gate",
    "describeScalableTargets": "gate",
    "listTags": "gate",
    # The deploy lock is taken before the gate reads the serving endpoint (putItem, getItem, the owner's status).
    "putItem": "gate",
    "getItem": "gate",
    "describeExecution": "gate",
    "createModel": "deploy",
    "createEndpointConfig": "deploy",
    "createEndpoint": "deploy",
    "updateEndpoint": "deploy",
    "deleteScalingPolicy": "deploy",
    "deregisterScalableTarget": "deploy",
    "registerScalableTarget": "scale",
    "putScalingPolicy": "scale",
    "addTags": "record",
    "deleteItem": "record",  # the deploy lock's release after a deployment (on failure it is cleanup)
}


def task_action(state: Mapping[str, Any]) -> str | None:
    """``createTrainingJob`` for ``arn:aws:states:::aws-sdk:sagemaker:createTrainingJob``; None for non-Tasks."""
    if state.get("Type") != "Task":
        return None
    return str(state.get("Resource", "")).rsplit(":", 1)[-1] or None


def _states(definition: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, state in definition.get("States", {}).items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _states(branch)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _states(processor)


def _successors(state: Mapping[str, Any]) -> Iterator[str]:
    if state.get("Next"):
        yield str(state["Next"])
    if state.get("Default"):
        yield str(state["Default"])
    for choice in state.get("Choices", []):
        if choice.get("Next"):
            yield str(choice["Next"])
    for catcher in state.get("Catch", []):
        yield str(catcher["Next"])


@dataclass(frozen=True)
class PhaseMap:
    """Each state's own phase where the ASL fixes one (Tasks, cleanup), from one definition."""

    fixed: Mapping[str, str]
    actions: Mapping[str, str]

    @classmethod
    def from_definition(cls, definition: Mapping[str, Any]) -> PhaseMap:
        states = dict(_states(definition))
        fixed: dict[str, str] = {}
        actions: dict[str, str] = {}
        for name, state in states.items():
            action = task_action(state)
            if action is not None:
                actions[name] = action
                if action in ACTION_PHASES:
                    fixed[name] = ACTION_PHASES[action]
        pending = [CLEANUP_STATE] if CLEANUP_STATE in states else []
        while pending:
            name = pending.pop()
            if fixed.get(name) == CLEANUP:
                continue
            fixed[name] = CLEANUP
            pending.extend(s for s in _successors(states[name]) if s in states)
        return cls(fixed=fixed, actions=actions)

    @classmethod
    def from_file(cls, path: Path) -> PhaseMap:
        return cls.from_definition(json.loads(path.read_text(encoding="utf-8")))

    def unplaced_actions(self) -> set[str]:
        """Task actions of the ASL that no phase claims (the unit test keeps this empty)."""
        return {a for n, a in self.actions.items() if a not in ACTION_PHASES and self.fixed.get(n) != CLEANUP}


@dataclass
class PhaseTracker:
    """Follows an execution's entered states; says when a new phase starts."""

    phases: PhaseMap
    current: str | None = None

    def enter(self, state: str) -> str | None:
        """The phase that starts with ``state``, or None if the execution stays in its current phase."""
        phase = self.phases.fixed.get(state)
        if self.current is None and phase is None:
            phase = PHASES[0]  # the first states (ValidateInput and its branch) are the input check
        if phase is None or phase == self.current:
            return None
        if phase != CLEANUP and self.current in PHASES and PHASES.index(phase) < PHASES.index(self.current):
            return None  # phases only move forward (see the module docstring)
        self.current = phase
        return phase


def phase_label(phase: str) -> str:
    """``[3/7] train``, or ``cleanup`` for the failure path."""
    if phase in PHASES:
        return f"[{PHASES.index(phase) + 1}/{len(PHASES)}] {phase}"
    return phase
