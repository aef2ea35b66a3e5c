"""CloudWatch alarms on the local AWS are evaluated as CloudWatch does, over real boto3 calls (CBOR wire protocol).

Time runs 60x (LOCAL_AWS_TIME_SCALE): a 60-second period lasts one real second, so these tests live through
minutes of alarm evaluation in seconds. Each alarm watches its own dimensions, so the tests share the session's
runtime without seeing each other's data.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_aws.constants import REPO_ROOT, TEMPLATE_PATH
from local_aws.deploy import deploy
from tests.integration.local_aws_fixtures import Aws

SCALE = 60.0
NAMESPACE = "Local/AlarmTests"


@pytest.fixture(autouse=True)
def _fast_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_AWS_TIME_SCALE", str(SCALE))


@pytest.fixture
def cw(local_aws: Aws) -> Any:
    return local_aws.client("cloudwatch")


@pytest.fixture
def alarm(cw: Any) -> Iterator[Callable[..., tuple[str, list[dict[str, str]]]]]:
    """Creates alarms on a metric of their own; deletes them afterwards."""
    made: list[str] = []

    def create(**params: Any) -> tuple[str, list[dict[str, str]]]:
        name = f"test-{uuid.uuid4().hex[:10]}"
        dims = [{"Name": "Case", "Value": name}]
        values: dict[str, Any] = {
            "Namespace": NAMESPACE,
            "MetricName": "Errors",
            "Dimensions": dims,
            "Statistic": "Sum",
            "Period": 120,  # 2 real seconds
            "EvaluationPeriods": 3,
            "DatapointsToAlarm": 2,
            "Threshold": 10.0,
            "ComparisonOperator": "GreaterThanThreshold",
        }
        values.update(params)
        cw.put_metric_alarm(AlarmName=name, **values)
        made.append(name)
        return name, dims

    yield create
    if made:
        cw.delete_alarms(AlarmNames=made)


def state(cw: Any, name: str) -> dict[str, Any]:
    alarms: list[dict[str, Any]] = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return alarms[0]


def wait_state(cw: Any, name: str, wanted: str, timeout_s: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        current = state(cw, name)
        if current["StateValue"] == wanted or time.monotonic() > deadline:
            return current
        time.sleep(0.1)


def period_start(period_aws_s: float, offset_periods: float = 0.0) -> float:
    """The wall-clock start of the current (scaled) period, plus ``offset_periods`` periods."""
    real = period_aws_s / SCALE
    return math.floor(time.time() / real) * real + offset_periods * real


def put(cw: Any, dims: list[dict[str, str]], value: float, at: float, name: str = "Errors") -> None:
    cw.put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {"MetricName": name, "Dimensions": dims, "Value": value, "Timestamp": datetime.fromtimestamp(at, UTC)}
        ],
    )


def test_new_alarm_starts_insufficient_data(cw: Any, alarm: Any) -> None:
    name, _ = alarm(Period=3600)  # nothing evaluates it within this test's life: no complete period has data
    described = state(cw, name)
    assert described["StateValue"] == "INSUFFICIENT_DATA"
    assert described["StateReason"] == "Unchecked: Initial alarm creation"


def test_alarm_needs_m_of_n_breaching_periods_then_recovers(cw: Any, alarm: Any) -> None:
    name, dims = alarm(Period=240)  # Sum > 10 in 2 out of 3 four-second periods
    ref = period_start(240)  # every datum is placed relative to one period boundary, however slow the calls
    put(cw, dims, 50.0, ref - 0.5 * 4.0)  # one breaching period (the last complete one)
    first = wait_state(cw, name, "OK")
    assert first["StateValue"] == "OK", first["StateReason"]  # 1 of 3 breaching is not 2 of 3
    assert state(cw, name)["StateValue"] == "OK"
    put(cw, dims, 50.0, ref - 1.5 * 4.0)  # a second breaching period, in the same window
    alarmed = wait_state(cw, name, "ALARM", timeout_s=5.0)
    assert alarmed["StateValue"] == "ALARM", alarmed["StateReason"]
    assert alarmed["StateReason"].startswith("Threshold Crossed: 2 out of the last 2 datapoints [50.0 (")
    assert (
        "were greater than the threshold (10.0) (minimum 2 datapoints for OK -> ALARM transition)."
        in (alarmed["StateReason"])
    )
    assert json.loads(alarmed["StateReasonData"])["recentDatapoints"] == [50.0, 50.0]
    assert alarmed["StateUpdatedTimestamp"] > first["StateUpdatedTimestamp"]
    # Back below the threshold: the next periods carry low values; once the breaching ones leave the window, OK.
    for k in range(4):
        put(cw, dims, 1.0, ref + (k + 0.5) * 4.0)
    recovered = wait_state(cw, name, "OK", timeout_s=20.0)
    assert recovered["StateValue"] == "OK", recovered["StateReason"]
    assert (
        "not greater than the threshold (10.0) (minimum 1 datapoint for ALARM -> OK transition)."
        in (recovered["StateReason"])
    )
    history = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    assert [h["HistorySummary"] for h in history] == [
        "Alarm updated from ALARM to OK",
        "Alarm updated from OK to ALARM",
        "Alarm updated from INSUFFICIENT_DATA to OK",
    ]
    change = json.loads(history[1]["HistoryData"])
    assert change["oldState"]["stateValue"] == "OK" and change["newState"]["stateValue"] == "ALARM"
    assert change["newState"]["stateReason"] == alarmed["StateReason"]


@pytest.mark.parametrize(
    ("treat", "expected", "reason"),
    [
        ("missing", "INSUFFICIENT_DATA", "Insufficient Data: 3 datapoints were unknown."),
        (
            "breaching",
            "ALARM",
            "Threshold Crossed: no datapoints were received for 3 periods and 3 missing "
            "datapoints were treated as [Breaching].",
        ),
        (
            "notBreaching",
            "OK",
            "Threshold Crossed: no datapoints were received for 3 periods and 3 missing "
            "datapoints were treated as [NonBreaching].",
        ),
    ],
)
def test_missing_data_per_treat_missing_data(cw: Any, alarm: Any, treat: str, expected: str, reason: str) -> None:
    name, _ = alarm(TreatMissingData=treat, Period=60)
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM" if expected != "ALARM" else "OK", StateReason="by a test")
    described = wait_state(cw, name, expected)
    assert (described["StateValue"], described["StateReason"]) == (expected, reason)


def test_ignore_keeps_the_state_a_test_set(cw: Any, alarm: Any) -> None:
    name, _ = alarm(TreatMissingData="ignore", Period=60)
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="set by a test")
    time.sleep(1.5)  # several evaluations of 1-second periods, all without data
    described = state(cw, name)
    assert (described["StateValue"], described["StateReason"]) == ("ALARM", "set by a test")
    history = cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]
    assert [h["HistoryItemType"] for h in history] == ["StateUpdate", "ConfigurationUpdate"]


def test_updating_an_alarm_keeps_its_state(cw: Any, alarm: Any) -> None:
    name, dims = alarm(TreatMissingData="ignore", Period=3600)
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="set by a test")
    cw.put_metric_alarm(
        AlarmName=name,
        Namespace=NAMESPACE,
        MetricName="Errors",
        Dimensions=dims,
        Statistic="Sum",
        Period=3600,
        EvaluationPeriods=1,
        Threshold=99.0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="ignore",
    )
    described = state(cw, name)
    assert (described["StateValue"], described["Threshold"]) == ("ALARM", 99.0)


def test_template_alarms_are_deployed_and_evaluated(cw: Any, local_aws: Aws) -> None:
    stack = local_aws.runtime.stack
    assert stack is not None
    names = [stack.physical_ids["EndpointInvocation5xxAlarm"], stack.physical_ids["EndpointModelLatencyAlarm"]]
    alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNames=names)["MetricAlarms"]}
    five_xx = alarms[names[0]]
    assert (five_xx["Namespace"], five_xx["MetricName"], five_xx["Statistic"]) == (
        "AWS/SageMaker",
        "Invocation5XXErrors",
        "Sum",
    )
    assert (five_xx["EvaluationPeriods"], five_xx["DatapointsToAlarm"], five_xx["TreatMissingData"]) == (
        2,
        1,
        "notBreaching",
    )
    # notBreaching with no traffic: the evaluator has moved both out of INSUFFICIENT_DATA.
    assert wait_state(cw, names[0], "OK")["StateValue"] == "OK"
    assert wait_state(cw, names[1], "OK")["StateValue"] == "OK"


@contextlib.contextmanager
def restored_stack(local_aws: Aws) -> Iterator[None]:
    """Deploy something else into the session's runtime, then the session's own stack again.

    NOTE: a copy of the template deploys the same stack name, so its roles' policies (scoped to the copy's
    EnvironmentName) replace the session stack's, and IAM, enforced for role sessions, would then deny every later
    execution of the session (seen: CreateTrainingJob denied in the next test file). Redeploying template.yaml puts
    the session stack's own policies back.
    """
    try:
        yield
    finally:
        deploy(local_aws.runtime.clients())


def broken_template(tmp_path: Path, metric: str, treat_missing: bool = True) -> Path:
    """A copy of template.yaml whose 5XX alarm watches ``metric`` (without TreatMissingData unless
    ``treat_missing``), its state machine file next to it."""
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    head, sep, tail = text.partition("MetricName: Invocation5XXErrors")
    assert sep and "MetricName: Invocation5XXErrors" not in tail
    if not treat_missing:
        line = "      TreatMissingData: notBreaching\n"
        assert line in tail
        tail = tail.replace(line, "", 1)  # the 5XX alarm's: the first one after its MetricName
    (tmp_path / "statemachine").mkdir()
    shutil.copy(REPO_ROOT / "statemachine" / "train_and_deploy.asl.json", tmp_path / "statemachine")
    path = tmp_path / "template.yaml"
    path.write_text(f"{head}MetricName: {metric}{tail}", encoding="utf-8")
    return path


def test_broken_template_alarm_on_a_metric_that_does_not_exist_never_fires(
    cw: Any, local_aws: Aws, tmp_path: Path
) -> None:
    # A one-letter typo: "5xx" for the "5XX" SageMaker publishes. CloudWatch accepts the alarm, and with
    # notBreaching the alarm sits in OK forever while the real metric reports errors.
    env = "brk" + uuid.uuid4().hex[:4]
    with restored_stack(local_aws):
        record = deploy(
            local_aws.runtime.clients(),
            broken_template(tmp_path, "Invocation5xxErrors"),
            {"EnvironmentName": env},
            samconfig=None,
        )
    broken = record.physical_ids["EndpointInvocation5xxAlarm"]
    endpoint = f"dogbreed-{env}"
    dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]
    assert wait_state(cw, broken, "OK")["StateValue"] == "OK"
    for offset in (-1.5, -0.5):
        cw.put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[
                {
                    "MetricName": "Invocation5XXErrors",
                    "Dimensions": dims,
                    "Value": 5.0,
                    "Timestamp": datetime.fromtimestamp(period_start(60, offset), UTC),
                }
            ],
        )
    time.sleep(1.0)
    described = state(cw, broken)
    assert described["StateValue"] == "OK", described["StateReason"]
    assert "treated as [NonBreaching]" in described["StateReason"]
    cw.delete_alarms(
        AlarmNames=[record.physical_ids[k] for k in ("EndpointInvocation5xxAlarm", "EndpointModelLatencyAlarm")]
    )


def test_alarm_on_a_metric_that_does_not_exist_is_insufficient_data(cw: Any, alarm: Any) -> None:
    name, dims = alarm(MetricName="Errrors", Period=60)  # default TreatMissingData: missing
    put(cw, dims, 50.0, period_start(60, -0.5))  # the metric the alarm meant
    put(cw, dims, 50.0, period_start(60, -1.5))
    described = wait_state(cw, name, "INSUFFICIENT_DATA")
    time.sleep(0.5)
    described = state(cw, name)
    assert described["StateValue"] == "INSUFFICIENT_DATA", described["StateReason"]


def test_alarm_history_refuses_bad_parameters(cw: Any, alarm: Any) -> None:
    name, _ = alarm(Period=3600)
    with pytest.raises(ClientError) as caught:
        cw.describe_alarm_history(AlarmName=name, MaxRecords=101)
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert "Value '101' at 'maxRecords'" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateChange")
    assert "Value 'StateChange' at 'historyItemType'" in caught.value.response["Error"]["Message"]
    assert cw.describe_alarm_history(AlarmName=name, MaxRecords=1)["AlarmHistoryItems"][0]["HistorySummary"] == (
        f'Alarm "{name}" created'
    )


def test_broken_template_alarm_without_treat_missing_data_is_insufficient_data(
    cw: Any, local_aws: Aws, tmp_path: Path
) -> None:
    # The same typo with CloudWatch's default TreatMissingData (missing): the alarm never leaves INSUFFICIENT_DATA.
    env = "brk" + uuid.uuid4().hex[:4]
    template = broken_template(tmp_path, "Invocation5xxErrors", treat_missing=False)
    with restored_stack(local_aws):
        record = deploy(local_aws.runtime.clients(), template, {"EnvironmentName": env}, samconfig=None)
    names = [record.physical_ids[k] for k in ("EndpointInvocation5xxAlarm", "EndpointModelLatencyAlarm")]
    try:
        assert "TreatMissingData" not in state(cw, names[0])
        dims = [{"Name": "EndpointName", "Value": f"dogbreed-{env}"}, {"Name": "VariantName", "Value": "AllTraffic"}]
        stamp = datetime.fromtimestamp(period_start(60, -0.5), UTC)
        cw.put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[{"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Value": 5.0, "Timestamp": stamp}],
        )
        time.sleep(1.5)  # several evaluations of one-second periods
        described = state(cw, names[0])
        assert described["StateValue"] == "INSUFFICIENT_DATA", described["StateReason"]
        # No transition, so no new reason and no StateUpdate: it never left the state it was created in.
        assert described["StateReason"] == "Unchecked: Initial alarm creation"
        assert cw.describe_alarm_history(AlarmName=names[0], HistoryItemType="StateUpdate")["AlarmHistoryItems"] == []
    finally:
        cw.delete_alarms(AlarmNames=names)
