"""Static checks of statemachine/train_and_deploy.asl.json (issue 3 §6 "ASL structure" and "ASL-level asserts").

Scanners cannot see the SageMaker resources the state machine creates at run time, so the security settings are
asserted here on the definition itself (security-checklist items 21-31).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from local_aws.constants import SFN_HISTORY_MAX_EVENTS

ROOT = Path(__file__).resolve().parents[3]
ASL_PATH = ROOT / "statemachine" / "train_and_deploy.asl.json"
ASL = json.loads(ASL_PATH.read_text())
STATES: dict[str, dict[str, Any]] = ASL["States"]
SUBSTITUTION_KEYS = {
    "SageMakerRoleArn",
    "ArtifactBucket",
    "DataBucket",
    "KmsKeyArn",
    "TrainingImageUri",
    "InferenceImageUri",
    "EndpointName",
    "ResourcePrefix",
    "Rollback5xxAlarmName",
    "RollbackLatencyAlarmName",
    "DefaultTrainingInstanceType",
    "DefaultTrainingInstanceCount",
    "DefaultUseSpot",
    "DefaultEndpointInstanceType",
    "DefaultMinCapacity",
    "DefaultMaxCapacity",
    "DefaultTargetInvocations",
    "DefaultAccuracyThreshold",
    "ModelWorkers",
    "ServingBatchSize",
    "ServingMaxBatchDelayMs",
}
METRIC_NAMES = [
    "train:loss",
    "train:top1",
    "train:throughput",
    "valid:loss",
    "valid:top1",
    "valid:top5",
    "test:loss",
    "test:top1",
    "test:top5",
    "kept:loss",
    "kept:top1",
]
TRAIN_LINE = "METRIC split=train epoch=1 loss=0.523100 top1=0.812500 top5=0.990000 samples=1200 seconds=3.210 "
METRIC_LINES = {  # CONTRACTS §2 sample lines -> the values SageMaker must extract
    TRAIN_LINE + "throughput=373.8": {
        "train:loss": 0.5231,
        "train:top1": 0.8125,
        "train:throughput": 373.8,
    },
    "METRIC split=valid epoch=1 loss=0.412000 top1=0.880000 top5=1.000000 samples=300": {
        "valid:loss": 0.412,
        "valid:top1": 0.88,
        "valid:top5": 1.0,
    },
    "METRIC split=kept epoch=2 loss=0.398000 top1=0.895000 top5=1.000000": {
        "kept:loss": 0.398,
        "kept:top1": 0.895,
    },
    "METRIC split=test epoch=3 loss=0.401000 top1=0.900000 top5=1.000000 samples=300": {
        "test:loss": 0.401,
        "test:top1": 0.9,
        "test:top5": 1.0,
    },
}


def all_state_maps(states: dict[str, dict[str, Any]] = STATES) -> Iterator[dict[str, dict[str, Any]]]:
    yield states
    for state in states.values():
        for branch in state.get("Branches", []):
            yield from all_state_maps(branch["States"])


def all_states() -> Iterator[tuple[str, dict[str, Any]]]:
    for states in all_state_maps():
        yield from states.items()


def targets(state: dict[str, Any]) -> list[str]:
    found = [state[k] for k in ("Next", "Default") if k in state]
    found += [c["Next"] for c in state.get("Catch", [])]
    found += [c["Next"] for c in state.get("Choices", [])]
    return found


def tasks() -> list[tuple[str, dict[str, Any]]]:
    return [(n, s) for n, s in all_states() if s["Type"] == "Task"]


def task(action: str) -> dict[str, Any]:
    (found,) = [s for _, s in tasks() if s["Resource"].endswith(f":{action}")] or [None]
    assert found is not None, action
    return found


def choose(choice: dict[str, Any], data: dict[str, Any]) -> str:
    """Evaluate a Choice state on ``data`` for the operators these tests need (first matching rule wins)."""

    def get(path: str) -> Any:
        value: Any = data
        for part in path.removeprefix("$.").split("."):
            value = value[part]
        return value

    def holds(rule: dict[str, Any]) -> bool:
        if "Or" in rule:
            return any(holds(r) for r in rule["Or"])
        if "And" in rule:
            return all(holds(r) for r in rule["And"])
        if "Not" in rule:
            return not holds(rule["Not"])
        value = get(rule["Variable"])
        if "StringMatches" in rule:
            return fnmatchcase(value, rule["StringMatches"])
        if "NumericGreaterThan" in rule:
            return value > rule["NumericGreaterThan"]
        if "BooleanEquals" in rule:
            return value is rule["BooleanEquals"]
        raise NotImplementedError(rule)

    return next((r["Next"] for r in choice["Choices"] if holds(r)), choice["Default"])


def test_every_transition_target_exists_and_every_state_is_reachable() -> None:
    for states in all_state_maps():
        for name, state in states.items():
            for target in targets(state):
                assert target in states, f"{name} -> {target}"
    for states, start in [(STATES, ASL["StartAt"])] + [
        (b["States"], b["StartAt"]) for _, s in all_states() for b in s.get("Branches", [])
    ]:
        seen, todo = set(), [start]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(targets(states[name]))
        assert seen == set(states), f"unreachable: {sorted(set(states) - seen)}"


def test_every_path_ends_in_succeed_fail_or_end() -> None:
    for name, state in all_states():
        if state["Type"] not in ("Succeed", "Fail", "Choice"):
            assert "Next" in state or state.get("End") is True, name
        if state["Type"] == "Fail":
            assert ("Error" in state or "ErrorPath" in state) and ("Cause" in state or "CausePath" in state), name


def test_only_aws_sdk_integrations_without_sync() -> None:
    for name, state in tasks():
        # The deploy lock uses the optimized DynamoDB integration (its errors are DynamoDB.<Code>, as documented
        # in docs.aws.amazon.com/step-functions/latest/dg/connect-ddb.html); nothing waits on a .sync integration.
        assert re.fullmatch(
            r"arn:aws:states:::(aws-sdk:(sagemaker|applicationautoscaling|sfn)|dynamodb):[a-zA-Z]+", state["Resource"]
        ), name


# The Step Functions error prefix of each integration's errors (ServiceName.ErrorName, PascalCase).
ERROR_PREFIX = {
    "sagemaker": "SageMaker.",
    "applicationautoscaling": "ApplicationAutoScaling.",
    "dynamodb": "DynamoDB.",
    "sfn": "Sfn.",
}


def poll_tasks() -> set[str]:
    """The Describe tasks inside a poll loop: the loop itself is their retry (each turn is budgeted)."""
    return {n for loop in loops() for n in loop if STATES[n]["Type"] == "Task"}


def test_every_task_has_timeout_transient_retry_with_jitter_and_a_final_catch_all() -> None:
    polled = poll_tasks()
    for name, state in tasks():
        assert 0 < state["TimeoutSeconds"] <= 300, name
        if name in polled:
            # No Retry: a retry inside a turn would add events the poll budget does not count.
            assert "Retry" not in state, name
        else:
            assert state["Retry"], name
        for retrier in state.get("Retry", []):
            assert retrier["JitterStrategy"] == "FULL", name
            assert retrier["MaxAttempts"] <= 5 and retrier["BackoffRate"] >= 2, name
            # Transient only: never a catch-all, never a permanent modeled error.
            for error in retrier["ErrorEquals"]:
                assert error not in ("States.ALL", "States.TaskFailed", "States.Runtime"), name
                assert not error.endswith(
                    (
                        "ResourceInUseException",
                        "ResourceNotFoundException",
                        "ValidationException",
                        "ObjectNotFoundException",
                    )
                ), name
            service = ERROR_PREFIX[state["Resource"].split(":")[-2]]
            assert all(e.startswith((service, "States.Timeout")) for e in retrier["ErrorEquals"]), name
        assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
        assert all("States.ALL" not in c["ErrorEquals"] for c in state["Catch"][:-1]), name


def contract_actions() -> set[tuple[str, str]]:
    """The (service, Action) pairs CONTRACTS §7 grants the state machine."""
    text = " ".join((ROOT / "docs" / "CONTRACTS.md").read_text().split())
    section = text[text.index("Service actions the ASL calls") :]
    found = set()
    for service, asl_name in (
        ("sagemaker", "sagemaker"),
        ("application-autoscaling", "applicationautoscaling"),
        ("dynamodb", "dynamodb"),
        ("states", "sfn"),
    ):
        listed = re.search(rf"\b{service}: (.*?)[;.] ", section)
        assert listed, service
        found |= {(asl_name, a.strip()) for a in listed.group(1).split(",")}
    return found


def test_actions_are_exactly_the_contract_set() -> None:
    used = set()
    for _, state in tasks():
        service, action = state["Resource"].split(":")[-2:]
        used.add((service, action[0].upper() + action[1:]))
    assert used == contract_actions()


def test_placeholders_are_exactly_the_definition_substitutions() -> None:
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", ASL_PATH.read_text()))
    assert placeholders == SUBSTITUTION_KEYS
    template = ROOT / "template.yaml"
    if template.exists():
        from local_aws.cloudformation import load_template

        props = load_template(template)["Resources"]["TrainDeployStateMachine"]["Properties"]
        assert set(props["DefinitionSubstitutions"]) == placeholders
        assert props["DefinitionUri"] == "statemachine/train_and_deploy.asl.json"


def loops() -> list[set[str]]:
    """Strongly connected groups of top-level states that form a cycle."""
    graph = {n: set(targets(s)) for n, s in STATES.items()}
    result = []
    for name in graph:
        reach, todo = set(), [name]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in reach:
                    reach.add(nxt)
                    todo.append(nxt)
        if name in reach:
            back = {m for m in reach if name in _reach(graph, m)} | {name}
            if back not in result:
                result.append(back)
    return result


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def spends(state: dict[str, Any]) -> int:
    """How many polls of the budget a state takes (a Pass computing ``MathAdd($.Poll.Remaining, -k)``), else 0."""
    if state["Type"] != "Pass":
        return 0
    for value in state.get("Parameters", {}).values():
        match = re.fullmatch(r"States\.MathAdd\(\$\.Poll\.Remaining, -(\d+)\)", str(value))
        if match:
            return int(match.group(1))
    return 0


def test_every_loop_is_a_budgeted_poll_with_a_growing_interval() -> None:
    """Five loops (tuning, training, endpoint, a throttled lookup, the deploy lock); every turn spends the budget.

    Without the states that spend polls the graph has no cycle, so no turn is free; and every Choice in a loop
    checks the budget (at least what a turn spends) before any rule, or its Default, that goes round again.
    """
    found = loops()
    assert len(found) == 5
    graph = {n: {t for t in targets(s) if not spends(STATES[t])} for n, s in STATES.items() if not spends(s)}
    for name in graph:
        assert name not in _reach(graph, name), f"{name} loops without spending the poll budget"
    for loop in found:
        kinds = {STATES[n]["Type"] for n in loop}
        assert kinds == {"Wait", "Task", "Choice", "Pass"}, loop
        cost = max(spends(STATES[n]) for n in loop)
        assert cost >= 1, loop
        for name in loop:
            state = STATES[name]
            if state["Type"] == "Wait":
                assert state["SecondsPath"].startswith(("$.Poll.Interval", "$.Config.Polling.")), name
            if state["Type"] == "Choice":
                rules = [*state["Choices"], {"Next": state["Default"]}]
                budget = next(
                    i
                    for i, r in enumerate(rules)
                    if r.get("Variable") == "$.Poll.Remaining" and r.get("NumericLessThanEquals", 0) >= cost
                )
                assert rules[budget]["Next"] not in loop, name
                assert all(r["Next"] not in loop for r in rules[:budget]), name
    # The interval doubles (MathAdd(x, x)) up to Polling.MaxIntervalSeconds and restarts for each wait.
    for kind in ("Tuning", "Training", "Endpoint"):
        assert STATES[f"Count{kind}Poll"]["Parameters"]["Interval.$"] == "$.Poll.Doubled"
        assert STATES[f"Count{kind}Poll"]["Parameters"]["Doubled.$"] == "States.MathAdd($.Poll.Doubled, $.Poll.Doubled)"
        capped = STATES[f"Count{kind}PollAtCap"]["Parameters"]
        assert capped["Interval.$"] == "$.Config.Polling.MaxIntervalSeconds"
        assert STATES[f"Start{kind}Poll"]["Parameters"]["Remaining.$"] == "$.Poll.Remaining"
        assert STATES[f"Start{kind}Poll"]["Parameters"]["Interval.$"] == "$.Config.Polling.IntervalSeconds"


# Events Step Functions writes per state (aws-failure-behaviours.md §7): Entered + Exited; a Task adds Scheduled,
# Started and its outcome, and each retry another Failed + Scheduled + Started; a Parallel adds Started and
# Succeeded around its branches. The execution adds ExecutionStarted and its end. tests/integration/statemachine/
# test_history_budget.py measures a real history against these figures.
HISTORY_QUOTA = SFN_HISTORY_MAX_EVENTS  # docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
EXECUTION_EVENTS = 2


def state_events(state: dict[str, Any], retries: bool = True) -> int:
    """The most events one entry into ``state`` can write."""
    events = 2
    if state["Type"] == "Task":
        events += 3 + (3 * sum(r["MaxAttempts"] for r in state.get("Retry", [])) if retries else 0)
    if state["Type"] == "Parallel":
        events += 2 + sum(state_events(s) for b in state["Branches"] for s in b["States"].values())
    return events


def simple_cycles(nodes: set[str]) -> list[list[str]]:
    """Every simple cycle through ``nodes`` (each loop has a handful of states, so a plain search is enough)."""
    order = sorted(nodes)
    found: list[list[str]] = []

    def walk(start: str, path: list[str]) -> None:
        for nxt in targets(STATES[path[-1]]):
            if nxt == start:
                found.append(list(path))
            elif nxt in nodes and nxt not in path and order.index(nxt) > order.index(start):
                walk(start, [*path, nxt])

    for start in order:
        walk(start, [start])
    return found


def turn_events() -> int:
    """The most events one budgeted poll can cost: over every way round every loop, the events of one turn (no
    retries: in-loop tasks have none) over the polls that turn spends."""
    worst = 0
    for loop in loops():
        for cycle in simple_cycles(loop):
            events = sum(state_events(STATES[n]) for n in cycle)
            cost = sum(spends(STATES[n]) for n in cycle)
            worst = max(worst, -(-events // cost))
    return worst


def max_polls() -> int:
    """The largest Polling.MaxAttempts ValidateInput accepts."""
    (rule,) = [
        r
        for r in all_state_maps_choices("CheckInput")
        if r.get("Variable") == "$.Polling.MaxAttempts" and "NumericGreaterThan" in r
    ]
    return int(rule["NumericGreaterThan"])


def all_state_maps_choices(name: str) -> list[dict[str, Any]]:
    (state,) = [s for n, s in all_states() if n == name]
    return list(state["Choices"])


def test_the_poll_budget_keeps_every_execution_under_the_history_quota() -> None:
    """Worst case: every state once (every retry spent), plus the largest poll budget at the worst turn's cost."""
    once = EXECUTION_EVENTS + sum(state_events(s) for s in STATES.values())
    assert turn_events() == 11  # Wait 2 + Describe 5 + Choice 2 + Pass 2
    assert once + max_polls() * turn_events() <= HISTORY_QUOTA, (once, max_polls(), turn_events())
    default = ASL["States"]["ValidateInput"]["Branches"][0]["States"]["CollectInput"]["Parameters"]["Defaults"]
    assert default["Polling"]["MaxAttempts"] == max_polls()


def test_the_default_budget_outlasts_the_default_spot_wait_and_a_72_hour_job() -> None:
    """At the defaults (60 s doubling to 480 s, 2000 polls) the budget covers the 48 h spot wait and a 72 h job,
    with the endpoint's hour-long blue/green update on top."""
    defaults = ASL["States"]["ValidateInput"]["Branches"][0]["States"]["CollectInput"]["Parameters"]["Defaults"]
    interval, budget = defaults["Polling"]["IntervalSeconds"], defaults["Polling"]["MaxAttempts"]
    cap = 8 * interval  # DefaultPollCap
    covered, polls, step = 0, 0, interval
    while polls < budget:
        covered, polls, step = covered + step, polls + 1, min(2 * step, cap)
    endpoint = task("updateEndpoint")["Parameters"]["DeploymentConfig"]["BlueGreenUpdatePolicy"][
        "MaximumExecutionTimeoutInSeconds"
    ]
    assert defaults["Training"]["MaxWaitSeconds"] == 48 * 3600
    assert covered >= 72 * 3600 + endpoint
    assert covered >= defaults["Training"]["MaxWaitSeconds"] + endpoint


def test_the_deployment_timeout_outlasts_the_longest_bake() -> None:
    """botocore's BlueGreenUpdatePolicy: MaximumExecutionTimeoutInSeconds "should be larger than the total waiting
    time specified in TerminationWaitInSeconds and WaitIntervalInSeconds"; the input allows a bake up to
    WaitIntervalInSeconds' maximum, and the deployment also has to bring the new fleet up."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    most_bake = model.shape_for("TrafficRoutingConfig").members["WaitIntervalInSeconds"].metadata["max"]
    timeout_range = model.shape_for("BlueGreenUpdatePolicy").members["MaximumExecutionTimeoutInSeconds"].metadata
    policy = task("updateEndpoint")["Parameters"]["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    refused = STATES["ValidateInput"]["Branches"][0]["States"]
    assert "Deploy.BakeSeconds must be a number from 0 to 3600." in json.dumps(refused) and most_bake == 3600
    timeout = policy["MaximumExecutionTimeoutInSeconds"]
    assert timeout_range["min"] <= timeout <= timeout_range["max"]
    assert timeout > policy["TerminationWaitInSeconds"] + most_bake


def test_a_failed_status_read_never_stops_a_job() -> None:
    """A read that is not a throttle leaves the job running: Cleanup's stop states are skipped."""
    assert STATES["TrainingStatusUnreadable"]["Next"] == "CleanupDeployment"
    assert STATES["TuningStatusUnreadable"]["Next"] == "CleanupTraining"
    for kind in ("Tuning", "Training", "Endpoint"):
        catches = STATES[
            {"Tuning": "DescribeTuning", "Training": "DescribeTraining", "Endpoint": "DescribeEndpoint"}[kind]
        ]["Catch"]
        assert [c["Next"] for c in catches] == [f"{kind}ReadFailed", f"{kind}StatusUnreadable"]
        assert "SageMaker.ThrottlingException" in catches[0]["ErrorEquals"]
    # Cleanup deletes this execution's config only when the endpoint was read, or is proven missing.
    assert STATES["CheckEndpointBeforeCleanup"]["Catch"][0]["Next"] == "CleanupEndpointGone"
    assert STATES["CleanupEndpointGone"]["Default"] == "ReleaseLockBeforeFailing"


def test_quota_errors_back_off_then_name_the_quota() -> None:
    """Every Create*/UpdateEndpoint retries ResourceLimitExceeded with backoff, then fails QuotaExceeded."""
    creators = [n for n, s in tasks() if re.search(r":(create[A-Za-z]+|updateEndpoint)$", s["Resource"])]
    assert len(creators) == 7
    for name in creators:
        first = STATES[name]["Retry"][0]
        assert first["ErrorEquals"] == ["SageMaker.ResourceLimitExceededException"], name
        assert first["IntervalSeconds"] >= 30 and first["MaxDelaySeconds"] >= 300, name
        assert STATES[name]["Catch"][0] == {
            "ErrorEquals": ["SageMaker.ResourceLimitExceededException"],
            "ResultPath": "$.Error",
            "Next": "QuotaExceeded",
        }, name
    assert STATES["QuotaExceeded"]["Parameters"]["Error"] == "QuotaExceeded"
    assert "$.Error.Cause" in STATES["QuotaExceeded"]["Parameters"]["Cause.$"]


def test_metric_definitions_match_training_and_parse_the_contract_lines() -> None:
    shared = ROOT / "training" / "metric_definitions.json"
    training = task("createTrainingJob")["Parameters"]["AlgorithmSpecification"]["MetricDefinitions"]
    tuning = task("createHyperParameterTuningJob")["Parameters"]["TrainingJobDefinition"]["AlgorithmSpecification"]
    assert tuning["MetricDefinitions"] == training
    if shared.exists():
        assert training == json.loads(shared.read_text())
    assert [m["Name"] for m in training] == METRIC_NAMES
    for line, expected in METRIC_LINES.items():
        for metric in training:
            match = re.search(metric["Regex"], line)
            if metric["Name"] in expected:
                assert match and float(match.group(1)) == pytest.approx(expected[metric["Name"]]), metric
            else:
                assert match is None, (metric, line)


def test_training_job_isolation_and_kms() -> None:
    params = task("createTrainingJob")["Parameters"]
    assert params["EnableNetworkIsolation"] is True
    # Literal true: holds for one instance and for many (item 26), there is no branch where it is off.
    assert params["EnableInterContainerTrafficEncryption"] is True
    assert params["OutputDataConfig"]["KmsKeyId"] == "${KmsKeyArn}"
    assert params["RoleArn"] == "${SageMakerRoleArn}"
    # Channels are planned once (data, plus the optional pretrained-weights channel) and used by both job kinds.
    assert params["InputDataConfig.$"] == "$.Plan.Channels.List"
    for plan in ("PlanDataChannel", "PlanDataAndWeightsChannels"):
        channels = STATES[plan]["Parameters"]["List"]
        assert channels[0]["ChannelName"] == "training"
        # FullyReplicated + DistributedSampler in train.py: each rank sees a disjoint 1/world shard, never 1/N².
        assert {c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for c in channels} == {"FullyReplicated"}
    assert [c["ChannelName"] for c in STATES["PlanDataAndWeightsChannels"]["Parameters"]["List"]] == [
        "training",
        "weights",
    ]
    assert params["CheckpointConfig"]["S3Uri.$"].startswith("States.Format('s3://${ArtifactBucket}/checkpoints/")
    assert params["ResourceConfig.$"] == "$.Plan.ResourceConfig"
    tuning = task("createHyperParameterTuningJob")["Parameters"]["TrainingJobDefinition"]
    assert tuning["EnableNetworkIsolation"] is True and tuning["EnableInterContainerTrafficEncryption"] is True
    assert tuning["OutputDataConfig"]["KmsKeyId"] == "${KmsKeyArn}"
    assert tuning["InputDataConfig.$"] == "$.Plan.Channels.List"


@pytest.mark.parametrize(
    ("instance_type", "volume_key"),
    [("ml.m5.xlarge", True), ("ml.p3.2xlarge", True), ("ml.g5.xlarge", False), ("ml.p4d.24xlarge", False)],
)
def test_training_volume_kms_on_every_instance_without_local_storage(instance_type: str, volume_key: bool) -> None:
    plan = STATES[choose(STATES["PlanTrainingVolume"], {"Config": {"Training": {"InstanceType": instance_type}}})]
    assert ("VolumeKmsKeyId" in plan["Parameters"]) is volume_key
    if volume_key:
        assert plan["Parameters"]["VolumeKmsKeyId"] == "${KmsKeyArn}"


@pytest.mark.parametrize(("count", "distributed"), [(1, False), (2, True), (8, True)])
def test_multi_instance_branch_enables_torch_distributed(count: int, distributed: bool) -> None:
    plan = STATES[choose(STATES["PlanTopology"], {"Config": {"Training": {"InstanceCount": count}}})]
    assert (plan["Result"] == {"sagemaker_torch_distributed_enabled": "true"}) is distributed
    assert STATES["MergeHyperparameters"]["Parameters"]["Values.$"].endswith(
        "$.Plan.DistributedHyperParameters, false)"
    )


def test_spot_branch_sets_max_wait_and_on_demand_does_not() -> None:
    spot = STATES[choose(STATES["PlanStopping"], {"Config": {"Training": {"UseSpot": True}}})]
    on_demand = STATES[choose(STATES["PlanStopping"], {"Config": {"Training": {"UseSpot": False}}})]
    assert set(spot["Parameters"]) == {"MaxRuntimeInSeconds.$", "MaxWaitTimeInSeconds.$"}
    assert set(on_demand["Parameters"]) == {"MaxRuntimeInSeconds.$"}
    assert task("createTrainingJob")["Parameters"]["EnableManagedSpotTraining.$"] == "$.Config.Training.UseSpot"


def test_model_and_endpoint_config_settings() -> None:
    model = task("createModel")["Parameters"]
    assert model["EnableNetworkIsolation"] is True and model["ExecutionRoleArn"] == "${SageMakerRoleArn}"
    environment = model["PrimaryContainer"]["Environment"]
    # TorchServe's workers and batching: template parameters (any TS knob set makes the toolkit start minWorkers).
    assert environment["SAGEMAKER_TS_MIN_WORKERS"] == environment["SAGEMAKER_TS_MAX_WORKERS"] == "${ModelWorkers}"
    assert environment["SAGEMAKER_TS_BATCH_SIZE"] == "${ServingBatchSize}"
    assert environment["SAGEMAKER_TS_MAX_BATCH_DELAY"] == "${ServingMaxBatchDelayMs}"
    kms_config = STATES["CreateEndpointConfig"]["Parameters"]
    assert kms_config["KmsKeyId"] == "${KmsKeyArn}"
    assert (
        choose(STATES["PlanEndpointConfig"], {"Config": {"Deploy": {"InstanceType": "ml.m5.large"}}})
        == "CreateEndpointConfig"
    )
    assert (
        choose(STATES["PlanEndpointConfig"], {"Config": {"Deploy": {"InstanceType": "ml.g5.xlarge"}}})
        == "CreateEndpointConfigLocalStorage"
    )


def test_update_uses_blue_green_with_the_template_alarms() -> None:
    config = task("updateEndpoint")["Parameters"]["DeploymentConfig"]
    assert "BlueGreenUpdatePolicy" in config
    assert config["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": "${Rollback5xxAlarmName}"},
        {"AlarmName": "${RollbackLatencyAlarmName}"},
    ]


def test_instance_type_change_deregisters_before_update_and_registers_after() -> None:
    assert STATES["ScalingBlocksUpdate"]["Choices"][0]["Next"] == "DeleteScalingPolicy"
    assert STATES["DeleteScalingPolicy"]["Next"] == "DeregisterScalableTarget"
    assert STATES["DeregisterScalableTarget"]["Next"] == "UpdateEndpoint"
    assert STATES["CheckEndpoint"]["Choices"][0]["Next"] == "RegisterScalableTarget"
    assert STATES["RegisterScalableTarget"]["Next"] == "PutScalingPolicy"
    for name in ("PutScalingPolicy", "RestoreServingPolicy"):
        policy = STATES[name]["Parameters"]
        assert policy["PolicyType"] == "TargetTrackingScaling"
        spec = policy["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
        assert spec["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"


def test_failed_resize_restores_the_serving_endpoints_autoscaling() -> None:
    # Cleanup re-registers what this execution deregistered, with the serving target's own limits, before it
    # decides which config it may delete.
    assert STATES["CheckEndpointBeforeCleanup"]["Next"] == "RestoreScalingNeeded"
    (choice,) = STATES["RestoreScalingNeeded"]["Choices"]
    variables = {c["Variable"] for c in choice["And"]}
    assert variables == {
        "$.Created.ScalingDeregistered",
        "$.CleanupEndpoint.EndpointStatus",
        "$.Serving.Scaling.ScalableTargets[0]",
    }
    assert choice["Next"] == "SelectServingTarget"
    assert STATES["RestoreScalingNeeded"]["Default"] == "ConfigStillReferenced"
    restore = STATES["RestoreServingScaling"]["Parameters"]
    assert restore["MinCapacity.$"] == "$.Restore.Target.MinCapacity"
    assert restore["MaxCapacity.$"] == "$.Restore.Target.MaxCapacity"
    assert STATES["RestoreServingScaling"]["Next"] == "RestoreServingPolicy"
    assert STATES["RestoreServingPolicy"]["Next"] == "ConfigStillReferenced"


def test_tuning_objective_is_validation_accuracy() -> None:
    config = task("createHyperParameterTuningJob")["Parameters"]["HyperParameterTuningJobConfig"]
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "kept:top1"}


def test_cleanup_never_deletes_a_config_an_endpoint_references() -> None:
    into_delete = [(n, s) for n, s in all_states() if "DeleteEndpointConfig" in targets(s)]
    assert sorted(n for n, _ in into_delete) == ["CleanupEndpointGone", "ConfigStillReferenced"]
    guard = STATES["ConfigStillReferenced"]
    assert guard["Default"] == "DeleteEndpointConfig"
    assert guard["Choices"][0] == {
        "Variable": "$.CleanupEndpoint.EndpointConfigName",
        "StringEqualsPath": "$.Names.Base",
        "Next": "ReleaseLockBeforeFailing",
    }
    for action in ("deleteModel", "deleteEndpointConfig"):
        assert task(action)["Parameters"] in ({"ModelName.$": "$.Names.Base"}, {"EndpointConfigName.$": "$.Names.Base"})
