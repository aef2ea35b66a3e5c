"""The ASL coverage report (tests/asl_coverage.py and its pytest plugin) on recorded execution histories.

The two history fixtures are real execution records of the local runtime (tests/events/sfn_history_*.json, payloads
dropped): an invalid input caught by ValidateInput's Catch, and a first deployment whose LookupEndpoint catches
SageMaker's "Could not find endpoint" and whose endpoint then fails. The small hand-made definitions pin the rules
(retries, catchers whose Next is also the state's Next, AWS's wildcards) that those histories do not exercise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local_aws.constants import ASL_PATH
from tests.asl_coverage import AslGraph, Edge, Taken, floor2, matches, report, trace

pytest_plugins = ("pytester",)

EVENTS = Path(__file__).resolve().parents[2] / "events"
ASL = json.loads(ASL_PATH.read_text())


def history(name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads((EVENTS / f"sfn_history_{name}.json").read_text())["events"]
    return events


def event(id_: int, kind: str, **details: Any) -> dict[str, Any]:
    """One history event; ``details`` go under the key Step Functions uses for that kind."""
    key = {"Entered": "stateEnteredEventDetails", "Exited": "stateExitedEventDetails"}.get(
        kind[-7:], f"{kind[0].lower()}{kind[1:]}EventDetails"
    )
    return {"id": id_, "previousEventId": id_ - 1, "type": kind, key: details}


def task_run(first_id: int, name: str, *outcomes: str | None) -> list[dict[str, Any]]:
    """A Task state entered once, one attempt per outcome (an error name, or None for success), then exited."""
    events = [event(first_id, "TaskStateEntered", name=name)]
    for outcome in outcomes:
        n = len(events) + first_id
        events.append(event(n, "TaskScheduled", resource="x"))
        if outcome is None:
            events.append(event(n + 1, "TaskSucceeded", resource="x"))
        else:
            events.append(event(n + 1, "TaskFailed", error=outcome, cause="boom"))
    events.append(event(len(events) + first_id, "TaskStateExited", name=name))
    return events


MINI = {
    "StartAt": "Stop",
    "States": {
        "Stop": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:sagemaker:stopTrainingJob",
            "Retry": [{"ErrorEquals": ["States.Timeout"]}, {"ErrorEquals": ["States.TaskFailed"]}],
            "Catch": [
                {"ErrorEquals": ["SageMaker.ResourceNotFound"], "Next": "After"},
                {"ErrorEquals": ["States.ALL"], "Next": "Elsewhere"},
            ],
            "Next": "After",
        },
        "After": {"Type": "Succeed"},
        "Elsewhere": {"Type": "Fail"},
    },
}


def mini(events: list[dict[str, Any]]) -> Taken:
    taken = Taken()
    trace(AslGraph.of(MINI), events, taken)
    return taken


def test_graph_holds_every_state_including_the_parallel_branch() -> None:
    graph = AslGraph.of(ASL)
    branch = ASL["States"]["ValidateInput"]["Branches"][0]["States"]
    assert set(ASL["States"]) | set(branch) == set(graph.states)
    assert {"CheckInput", "InputValid", "TrainingTimedOut", "TestMetricMissing"} <= set(graph.states)
    for edge in graph.all_edges("Catch"):
        assert edge.target in graph.states, edge  # every catcher leads to a state of the machine
    assert Edge("ValidateInput", "Catch", 0, ("States.ALL",), "InvalidInput") in graph.all_edges("Catch")


def test_duplicate_state_names_are_refused() -> None:
    nested = {"Type": "Parallel", "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}], "End": True}
    with pytest.raises(ValueError, match="'A' is defined twice"):
        AslGraph.of({"StartAt": "P", "States": {"P": nested, "A": {"Type": "Succeed"}}})


def test_invalid_input_history_enters_the_branch_fail_state_and_takes_the_parallel_catch() -> None:
    found = report(ASL, [history("invalid_gate")])

    taken = found.taken
    assert taken.executions == 1 and taken.foreign == 0
    assert {"ValidateInput", "CheckSections", "CheckInput", "Invalid18", "InvalidInput"} <= taken.states
    assert "InputValid" not in taken.states and "NameResources" not in taken.states
    assert taken.edges == {Edge("ValidateInput", "Catch", 0, ("States.ALL",), "InvalidInput")}
    assert 0 < found.ratio("State") < 1 and found.ratio("Retry") == 0.0


def test_caught_lookup_failure_takes_the_first_matching_catcher_only() -> None:
    found = report(ASL, [history("endpoint_failed")])

    lookup = [e for e in found.graph.all_edges("Catch") if e.state == "LookupEndpoint"]
    assert [e.target for e in lookup] == ["EndpointFound", "Cleanup"]
    assert found.taken.edges == {lookup[0]}  # SageMaker.SageMakerException is matched before States.ALL
    assert {"NoServingEndpoint", "CreateEndpoint", "EndpointFailedWithReason", "Failed"} <= found.taken.states
    assert "LookupFailed" not in found.taken.states


def test_report_lines_start_with_the_summary_figures() -> None:
    found = report(ASL, [history("invalid_gate"), history("endpoint_failed")])

    lines = found.lines()
    state, catch, retry = found.ratio("State"), found.ratio("Catch"), found.ratio("Retry")
    assert lines[:3] == [
        f"asl_state_coverage={floor2(state):.2f}",
        f"asl_catch_coverage={floor2(catch):.2f}",
        f"asl_retry_coverage={floor2(retry):.2f}",
    ]
    assert "by 2 executions" in lines[3]
    assert "  TrainingTimedOut" in lines and "  InputValid" not in lines
    assert "  LookupEndpoint --Catch[1] States.ALL--> Cleanup" in lines
    assert found.count("Catch") == (2, len(found.graph.all_edges("Catch")))


def test_a_normal_transition_to_a_catch_target_is_not_a_catch() -> None:
    events = [event(1, "ExecutionStarted"), *task_run(2, "Stop", None), event(7, "SucceedStateEntered", name="After")]
    assert mini(events).edges == set()


def test_a_failure_caught_to_the_same_next_state_is_a_catch() -> None:
    events = [
        event(1, "ExecutionStarted"),
        *task_run(2, "Stop", "SageMaker.ResourceNotFound"),
        event(7, "SucceedStateEntered", name="After"),
    ]
    assert mini(events).edges == {Edge("Stop", "Catch", 0, ("SageMaker.ResourceNotFound",), "After")}


def test_a_new_attempt_after_a_failure_is_the_first_matching_retry() -> None:
    events = [
        event(1, "ExecutionStarted"),
        *task_run(2, "Stop", "States.Timeout", "SageMaker.ThrottlingException", "SageMaker.Boom"),
        event(10, "FailStateEntered", name="Elsewhere"),
    ]
    retry_timeout = Edge("Stop", "Retry", 0, ("States.Timeout",))
    retry_failed = Edge("Stop", "Retry", 1, ("States.TaskFailed",))
    assert mini(events).edges == {retry_timeout, retry_failed, Edge("Stop", "Catch", 1, ("States.ALL",), "Elsewhere")}


def test_aws_wildcards() -> None:
    assert matches(["States.ALL"], "States.Timeout")
    assert matches(["States.TaskFailed"], "SageMaker.SageMakerException")
    assert not matches(["States.TaskFailed"], "States.Timeout")  # the one error States.TaskFailed does not match
    assert not matches(["SageMaker.ResourceNotFound"], "SageMaker.SageMakerException")


def test_a_history_of_another_state_machine_is_ignored() -> None:
    events = [event(1, "ExecutionStarted"), event(2, "PassStateEntered", name="NotInThisAsl")]
    found = report(ASL, [events, history("invalid_gate")])
    assert (found.taken.executions, found.taken.foreign) == (1, 1)
    assert "NotInThisAsl" not in found.taken.states
    # A record of a machine that entered no state at all is not one of ours either.
    assert report(ASL, [[event(1, "ExecutionStarted"), event(2, "ExecutionSucceeded")]]).taken.executions == 0


def test_figures_round_down() -> None:
    assert (floor2(0.996), floor2(1.0), floor2(0.57), floor2(0.0)) == (0.99, 1.0, 0.57, 0.0)


def _session(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # Not under an executions/ dir: the records of this inner session must not count for the outer one.
    records = pytester.path / "saved"
    records.mkdir()
    (records / "one.json").write_text((EVENTS / "sfn_history_invalid_gate.json").read_text())
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    return pytester.runpytest_inprocess("-p", "tests.asl_coverage_plugin", "--asl-coverage-from", "saved", *args)


def test_plugin_reports_without_failing_when_no_target_is_given(pytester: pytest.Pytester) -> None:
    result = _session(pytester)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.re_match_lines([r"^asl_state_coverage=0\.\d\d$", r"^asl_catch_coverage=0\.\d\d$"])
    result.stdout.fnmatch_lines(["states never entered (*):", "  TrainingTimedOut"])


def test_plugin_fails_the_session_below_the_target(pytester: pytest.Pytester) -> None:
    result = _session(pytester, "--asl-coverage-target=1.0", "--asl-coverage-json=report.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["FAIL: state coverage 0.* catch coverage 0.* is below --asl-coverage-target=1"])
    data = json.loads((pytester.path / "report.json").read_text())
    assert data["executions"] == 1 and "Invalid18" in data["states_entered"]
    assert "ValidateInput --Catch[0] States.ALL--> InvalidInput" in data["edges_taken"]


def test_plugin_passes_a_target_the_records_meet(pytester: pytest.Pytester) -> None:
    assert _session(pytester, "--asl-coverage-target=0.01").ret == pytest.ExitCode.OK
