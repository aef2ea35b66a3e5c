"""ASL coverage: which states, Retry edges and Catch edges of a state machine a set of execution histories took.

The graph is read from the ASL itself (every state, at any depth: Parallel branches and Map processors included), so
a state added to the definition shows up as not entered until a test reaches it. A history is the ``events`` list
of GetExecutionHistory (or of the runtime's on-disk execution record, which holds the same JSON) and is read the way
Step Functions writes it:

- a state is entered when its ``<Type>StateEntered`` event is in the history;
- a Retry edge is taken when a state fails (``TaskFailed``, ``TaskTimedOut``, ``ParallelStateFailed``, ...) and its
  next event is a new attempt of the same state (``TaskScheduled``) instead of a state transition: Step Functions
  does not re-enter a state to retry it;
- a Catch edge is taken when a state fails and the next state entered is that catcher's ``Next``. The catcher is the
  first whose ``ErrorEquals`` matches the error (AWS's order, and ``States.ALL`` / ``States.TaskFailed`` wildcards;
  https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html). Where the failure event names
  no error (moto's ``ParallelStateFailed`` carries no details), the first catcher leading to that state is the one.

Events of nested states are matched to their state with a stack of the open states (entered, not yet exited), so a
failure inside a Parallel branch is the branch state's until the Parallel itself fails. Branches that run at the same
time would interleave their events; this ASL's only Parallel has one branch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

# Failure events of a state (not of the execution): each may be followed by a retry or a catch.
FAILURE_EVENTS = frozenset(
    {
        "TaskFailed", "TaskTimedOut", "TaskStartFailed", "TaskSubmitFailed",
        "ActivityFailed", "ActivityTimedOut", "ActivityScheduleFailed",
        "LambdaFunctionFailed", "LambdaFunctionTimedOut", "LambdaFunctionStartFailed", "LambdaFunctionScheduleFailed",
        "ParallelStateFailed", "MapStateFailed", "EvaluationFailed",
    }
)  # fmt: skip
# The first event of a new attempt of a state that is being retried.
ATTEMPT_EVENTS = frozenset({"TaskScheduled", "ActivityScheduled", "LambdaFunctionScheduled", "ParallelStateStarted"})
FAILURE_OWNERS = {"ParallelStateFailed": "Parallel", "MapStateFailed": "Map"}


@dataclass(frozen=True, order=True)
class Edge:
    """One Retry or Catch clause of a state: ``kind`` is "Retry" or "Catch"; ``target`` is a catcher's Next."""

    state: str
    kind: str
    index: int
    errors: tuple[str, ...]
    target: str | None = None

    def __str__(self) -> str:
        errors = ",".join(self.errors)
        if self.kind == "Catch":
            return f"{self.state} --Catch[{self.index}] {errors}--> {self.target}"
        return f"{self.state} --Retry[{self.index}] {errors}--> {self.state}"


def matches(errors: Iterable[str], error: str) -> bool:
    """Whether a Retry/Catch ``ErrorEquals`` list matches an error name, with AWS's wildcards."""
    names = set(errors)
    return error in names or "States.ALL" in names or ("States.TaskFailed" in names and error != "States.Timeout")


@dataclass(frozen=True)
class AslGraph:
    """Every state of a definition (by name: names are unique across the whole machine) and its Retry/Catch edges."""

    states: dict[str, dict[str, Any]]
    retries: dict[str, list[Edge]]
    catches: dict[str, list[Edge]]

    @classmethod
    def of(cls, definition: dict[str, Any]) -> AslGraph:
        states: dict[str, dict[str, Any]] = {}
        for name, state in _walk(definition["States"]):
            if name in states:
                raise ValueError(f"state name {name!r} is defined twice")
            states[name] = state
        retries = {n: _edges(n, "Retry", s) for n, s in states.items() if s.get("Retry")}
        catches = {n: _edges(n, "Catch", s) for n, s in states.items() if s.get("Catch")}
        return cls(states, retries, catches)

    def all_edges(self, kind: str) -> list[Edge]:
        table = self.retries if kind == "Retry" else self.catches
        return [edge for edges in table.values() for edge in edges]

    def first_match(self, kind: str, state: str, error: str | None, target: str | None = None) -> Edge | None:
        """The clause AWS applies: the first whose ErrorEquals matches (any leading to ``target`` if no error)."""
        for edge in (self.retries if kind == "Retry" else self.catches).get(state, []):
            if error is not None:
                if matches(edge.errors, error):
                    return edge
            elif target is None or edge.target == target:
                return edge
        return None


def _walk(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _walk(branch["States"])
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _walk(processor["States"])


def _edges(name: str, kind: str, state: dict[str, Any]) -> list[Edge]:
    return [
        Edge(name, kind, i, tuple(clause["ErrorEquals"]), clause.get("Next") if kind == "Catch" else None)
        for i, clause in enumerate(state[kind])
    ]


@dataclass
class Taken:
    """What a set of histories took: states entered, Retry and Catch edges, and how many histories were read."""

    states: set[str] = field(default_factory=set)
    edges: set[Edge] = field(default_factory=set)
    executions: int = 0
    foreign: int = 0  # histories that entered a state this ASL does not have (another state machine)


def _details(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def trace(graph: AslGraph, events: list[dict[str, Any]], taken: Taken) -> None:
    """Add what one execution history took to ``taken``."""
    ordered = sorted(events, key=lambda e: int(e["id"]))
    entered = {_details(e)["name"] for e in ordered if e["type"].endswith("StateEntered")}
    if not entered or not entered <= graph.states.keys():  # no state of this ASL, or one it does not have
        taken.foreign += 1
        return
    taken.executions += 1
    taken.states |= entered
    open_states: list[str] = []
    pending: tuple[str, str | None] | None = None  # (failed state, error) awaiting a retry or a transition
    for event in ordered:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            target = _details(event)["name"]
            if pending is not None:
                caught = graph.first_match("Catch", pending[0], pending[1], target)
                if caught is not None and caught.target == target:
                    taken.edges.add(caught)
                pending = None
            open_states.append(target)
        elif kind.endswith("StateExited"):
            name = _details(event).get("name")
            if name in open_states:
                del open_states[open_states.index(name) :]
        elif kind in FAILURE_EVENTS:
            owner_type = FAILURE_OWNERS.get(kind)
            while owner_type and open_states and graph.states[open_states[-1]]["Type"] != owner_type:
                open_states.pop()  # the branch's states end with the Parallel (or Map) that holds them
            if open_states:
                pending = (open_states[-1], _details(event).get("error"))
        elif kind in ATTEMPT_EVENTS and pending is not None and open_states and open_states[-1] == pending[0]:
            retried = graph.first_match("Retry", pending[0], pending[1])
            if retried is not None:
                taken.edges.add(retried)
            pending = None
        elif kind.startswith("Execution") and kind != "ExecutionStarted":
            pending = None


@dataclass(frozen=True)
class Report:
    """Coverage figures of a :class:`Taken` against its graph."""

    graph: AslGraph
    taken: Taken

    def missing_states(self) -> list[str]:
        return [name for name in self.graph.states if name not in self.taken.states]

    def missing(self, kind: str) -> list[Edge]:
        return [edge for edge in self.graph.all_edges(kind) if edge not in self.taken.edges]

    def count(self, kind: str) -> tuple[int, int]:
        """(covered, total) of "State", "Catch" or "Retry"."""
        if kind == "State":
            return len(self.graph.states) - len(self.missing_states()), len(self.graph.states)
        total = len(self.graph.all_edges(kind))
        return total - len(self.missing(kind)), total

    def ratio(self, kind: str) -> float:
        """Fraction covered: "State", "Catch" or "Retry" (1.0 when the ASL has none of that kind)."""
        covered, total = self.count(kind)
        return 1.0 if total == 0 else covered / total

    def lines(self) -> list[str]:
        """The report as printed: the summary lines first (``asl_state_coverage=<x.xx>``, ...), then what is missing."""
        taken = self.taken
        counts = {kind: self.count(kind) for kind in ("State", "Catch", "Retry")}
        out = [f"asl_{kind.lower()}_coverage={floor2(self.ratio(kind)):.2f}" for kind in counts]
        (states, all_states), (catches, all_catches), (retries, all_retries) = counts.values()
        out.append(
            f"{states}/{all_states} states entered, {catches}/{all_catches} Catch edges and {retries}/{all_retries} "
            f"Retry edges taken, by {taken.executions} executions"
            + (f" ({taken.foreign} of other state machines ignored)" if taken.foreign else "")
        )
        missing_states = self.missing_states()
        out.append(f"states never entered ({len(missing_states)}):" + ("" if missing_states else " none"))
        out.extend(f"  {name}" for name in missing_states)
        for kind in ("Catch", "Retry"):
            edges = self.missing(kind)
            out.append(f"{kind} edges never taken ({len(edges)}):" + ("" if edges else " none"))
            out.extend(f"  {edge}" for edge in edges)
        return out


def floor2(value: float) -> float:
    """Round down to 2 decimals, so 0.996 prints 0.99 and only full coverage prints 1.00."""
    return math.floor(value * 100 + 1e-9) / 100


def report(definition: dict[str, Any], histories: Iterable[list[dict[str, Any]]]) -> Report:
    """Coverage of ``definition`` by every history (a GetExecutionHistory ``events`` list) in ``histories``."""
    graph = AslGraph.of(definition)
    taken = Taken()
    for events in histories:
        trace(graph, events, taken)
    return Report(graph, taken)
