"""The capacity plan of the ASL (PlanCapacity .. PlanEndpointConfig), walked state by state on sample inputs.

The walk evaluates the few constructs these states use (Pass Parameters with ``.$`` paths; Choice IsPresent and the
numeric ``...Path`` comparisons), so each rule of "never below the serving fleet, never below MinCapacity, never
below the input; bounds the larger of the old and the input" is checked on the definition itself. The execution
tests (tests/integration/statemachine/test_capacity.py) run the same states on the local AWS.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

ASL = json.loads((Path(__file__).resolve().parents[3] / "statemachine" / "train_and_deploy.asl.json").read_text())
STATES: dict[str, dict[str, Any]] = ASL["States"]
_MISSING = object()


def _get(data: Any, path: str) -> Any:
    value = data
    for part in path.removeprefix("$.").replace("[0]", ".0").split("."):
        if isinstance(value, list):
            value = value[int(part)] if value and part == "0" else _MISSING
        elif isinstance(value, dict):
            value = value.get(part, _MISSING)
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _holds(rule: dict[str, Any], data: dict[str, Any]) -> bool:
    value = _get(data, rule["Variable"])
    if "IsPresent" in rule:
        return (value is not _MISSING) is rule["IsPresent"]
    if "NumericGreaterThanPath" in rule:
        return bool(value > _get(data, rule["NumericGreaterThanPath"]))
    if "NumericLessThanPath" in rule:
        return bool(value < _get(data, rule["NumericLessThanPath"]))
    raise NotImplementedError(rule)


def plan(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Run the states from PlanCapacity to PlanEndpointConfig: ($.Capacity, the states entered)."""
    data, name, seen = copy.deepcopy(data), "PlanCapacity", []
    while name != "PlanEndpointConfig":
        seen.append(name)
        state = STATES[name]
        if state["Type"] == "Pass":
            result = {k.removesuffix(".$"): _get(data, v) for k, v in state["Parameters"].items()}
            assert _MISSING not in result.values(), name
            data[state["ResultPath"].removeprefix("$.")] = result
            name = state["Next"]
        else:
            assert state["Type"] == "Choice", name
            name = next((r["Next"] for r in state["Choices"] if _holds(r, data)), state["Default"])
    return data["Capacity"], seen


def execution_data(
    count: int, minimum: int, maximum: int, current: int | None = None, target: tuple[int, int] | None = None
) -> dict[str, Any]:
    """The state data at PlanCapacity: the input's Deploy section and what the lookups read back."""
    serving: dict[str, Any] = {"Record": {"HasRecord": False}}
    if current is not None:
        serving["Endpoint"] = {"ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": current}]}
        serving["Scaling"] = {"ScalableTargets": []}
    if target is not None:
        serving["Scaling"] = {"ScalableTargets": [{"MinCapacity": target[0], "MaxCapacity": target[1]}]}
    return {
        "Config": {"Deploy": {"InitialInstanceCount": count, "MinCapacity": minimum, "MaxCapacity": maximum}},
        "Serving": serving,
    }


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # A first deploy: the input, raised to its own minimum.
        (execution_data(1, 1, 2), {"Count": 1, "Min": 1, "Max": 2}),
        (execution_data(1, 2, 3), {"Count": 2, "Min": 2, "Max": 3}),
        # Scaled out to 3 under a 2..4 target: keep 3 instances and the 2..4 bounds.
        (execution_data(1, 1, 2, current=3, target=(2, 4)), {"Count": 3, "Min": 2, "Max": 4}),
        # The serving target's minimum is above the current count (autoscaling has not caught up): the minimum.
        (execution_data(1, 1, 2, current=1, target=(3, 5)), {"Count": 3, "Min": 3, "Max": 5}),
        # The input asks for more than the serving fleet has: the input wins, bounds the larger of both.
        (execution_data(4, 2, 6, current=2, target=(1, 4)), {"Count": 4, "Min": 2, "Max": 6}),
        # Scaled out with no scalable target (an operator's UpdateEndpointWeightsAndCapacities).
        (execution_data(1, 1, 2, current=2), {"Count": 2, "Min": 1, "Max": 2}),
    ],
)
def test_green_fleet_never_starts_below_the_blue_fleet_the_minimum_or_the_input(
    data: dict[str, Any], expected: dict[str, int]
) -> None:
    capacity, _ = plan(data)
    assert capacity == expected


def test_the_plan_feeds_the_endpoint_config_and_the_scalable_target() -> None:
    for name in ("CreateEndpointConfig", "CreateEndpointConfigLocalStorage"):
        (variant,) = STATES[name]["Parameters"]["ProductionVariants"]
        assert variant["InitialInstanceCount.$"] == "$.Capacity.Count", name
    register = STATES["RegisterScalableTarget"]["Parameters"]
    assert (register["MinCapacity.$"], register["MaxCapacity.$"]) == ("$.Capacity.Min", "$.Capacity.Max")
    assert STATES["CreateModel"]["Next"] == "PlanCapacity"


def test_every_capacity_state_is_on_some_sample_path() -> None:
    """The samples above reach every state of the plan (so each rule is exercised)."""
    samples = [
        execution_data(1, 2, 3),
        execution_data(1, 1, 2, current=3, target=(2, 4)),
        execution_data(1, 1, 2, current=1, target=(3, 5)),
    ]
    entered = {name for sample in samples for name in plan(sample)[1]}
    chain, name = set(), "PlanCapacity"
    todo = [name]
    while todo:
        current = todo.pop()
        if current in chain or current == "PlanEndpointConfig":
            continue
        chain.add(current)
        state = STATES[current]
        todo += [state.get("Next"), state.get("Default"), *(r["Next"] for r in state.get("Choices", []))]
        todo = [t for t in todo if t]
    assert entered == chain
