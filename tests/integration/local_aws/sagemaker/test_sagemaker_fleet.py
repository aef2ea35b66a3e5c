"""Endpoint fleets on the local SageMaker over HTTP: dead and hung instances replaced, N instance processes per
variant, per-variant CloudWatch metrics, and blue/green guardrails (CANARY share, alarm rollback).

Every endpoint serves ``untrained_artifact()`` (a seeded smallcnn, real serving code, milliseconds per request); the
model version in each answer says which fleet served it. Waits of the guardrails are AWS seconds: the tests run
them with ``LOCAL_AWS_TIME_SCALE`` so that a 300 s bake lasts 5 s.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image
from sagemaker_helpers import RawResponses, assert_output_shape, wait_for

from tests.integration.local_aws_fixtures import Aws, untrained_artifact, wait_endpoint

PREFIX = "tests/sagemaker/fleet"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (120, 80, 40)).save(out, format="PNG")
    return out.getvalue()


PNG = _png()


@pytest.fixture(scope="module")
def configs(local_aws: Aws) -> Any:
    """``config(version, count)``: an endpoint config of one AllTraffic variant serving model ``version``."""
    sm, s3 = local_aws.client("sagemaker"), local_aws.client("s3")
    bucket = local_aws.output("ArtifactBucketName")
    models: dict[str, str] = {}

    def config(version: str, count: int = 1) -> str:
        if version not in models:
            key = f"{PREFIX}/{version}-{uuid.uuid4().hex[:6]}/model.tar.gz"
            s3.put_object(Bucket=bucket, Key=key, Body=untrained_artifact(version=version))
            models[version] = f"fleet-{version}-{uuid.uuid4().hex[:6]}"
            sm.create_model(
                ModelName=models[version],
                ExecutionRoleArn=local_aws.output("SageMakerExecutionRoleArn"),
                PrimaryContainer={"Image": "local", "ModelDataUrl": f"s3://{bucket}/{key}"},
            )
        name = f"{models[version]}-{count}-{uuid.uuid4().hex[:4]}"
        sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": models[version],
                    "InitialInstanceCount": count,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        return name

    return config


@pytest.fixture
def endpoint(local_aws: Aws) -> Iterator[Any]:
    """``create(name, config)``: an InService endpoint, deleted after the test."""
    sm = local_aws.client("sagemaker")
    created: list[str] = []

    def create(name: str, config: str) -> dict[str, Any]:
        sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
        created.append(name)
        described = wait_endpoint(sm, name)
        assert described["EndpointStatus"] == "InService", described.get("FailureReason")
        return described

    yield create
    for name in created:
        with contextlib.suppress(ClientError):
            sm.delete_endpoint(EndpointName=name)


def _fleet(local_aws: Aws, name: str) -> Any:
    # NOTE: test-only access to a private attribute: an instance's process id is internal to the local runtime (AWS
    # has none to describe), and these tests kill or freeze the instance's process itself.
    control = local_aws.runtime._control
    assert control is not None
    return control.endpoints._fleets[name]


def _pids(local_aws: Aws, name: str) -> list[int]:
    return sorted(i.proc.pid for i in _fleet(local_aws, name).instances if i.healthy)


def _variant(sm: Any, name: str) -> dict[str, Any]:
    variant: dict[str, Any] = sm.describe_endpoint(EndpointName=name)["ProductionVariants"][0]
    return variant


def _invoke(smr: Any, name: str, body: bytes = PNG) -> str:
    answer = smr.invoke_endpoint(EndpointName=name, Body=body, ContentType="image/png")
    version: str = json.loads(answer["Body"].read())["model_version"]
    return version


def test_a_killed_instance_is_replaced_and_requests_fail_fast_meanwhile(
    local_aws: Aws, configs: Any, endpoint: Any
) -> None:
    """kill -9 of the only instance under load: 503 ServiceUnavailable (or a 424 for the request it was serving)
    until the replacement passes /ping; DescribeEndpoint says so (InService, CurrentInstanceCount 0 of 1)."""
    sm = local_aws.client("sagemaker")
    name = "fleet-heal"
    endpoint(name, configs("v1"))
    (victim,) = _pids(local_aws, name)
    outcomes: list[tuple[float, float, str]] = []  # (start, seconds, "ok" or "<code> <status> <message>")
    stop = threading.Event()

    def load() -> None:
        smr = local_aws.client("sagemaker-runtime", retries=1)  # no retries: every failure is seen
        while not stop.is_set():
            started = time.monotonic()
            try:
                _invoke(smr, name)
                outcome = "ok"
            except ClientError as exc:
                error, meta = exc.response["Error"], exc.response["ResponseMetadata"]
                outcome = f"{error['Code']} {meta['HTTPStatusCode']} {error['Message']}"
                outcome += f" ({exc.response.get('OriginalStatusCode')})" if error["Code"] == "ModelError" else ""
            outcomes.append((started, time.monotonic() - started, outcome))
            if outcome != "ok":
                time.sleep(0.05)  # a client's pause before the next try, so the failures do not starve the CPUs

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: sum(o[2] == "ok" for o in outcomes), lambda n: n >= 5, timeout=30, every=0.05)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        down = wait_for(lambda: _variant(sm, name), lambda v: v["CurrentInstanceCount"] == 0, timeout=10, every=0.1)
        assert down["DesiredInstanceCount"] == 1
        assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService"
        back = wait_for(lambda: _variant(sm, name), lambda v: v["CurrentInstanceCount"] == 1, timeout=90, every=0.2)
        recovered_at = time.monotonic()
        assert back["DesiredInstanceCount"] == 1
        wait_for(
            lambda: [o for o in outcomes if o[0] > recovered_at and o[2] == "ok"], lambda ok: len(ok) >= 3, timeout=30
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    (replacement,) = _pids(local_aws, name)
    assert replacement != victim
    failures = [o for o in outcomes if o[2] != "ok"]
    print(f"recovery after kill -9: {recovered_at - killed_at:.1f} s, {len(failures)} failed of {len(outcomes)}")
    assert failures, "the only instance was down: some request must have failed"
    assert recovered_at - killed_at < 60
    unavailable = "ServiceUnavailable 503 The service is unavailable. Try your call again."
    no_response = (
        'ModelError 424 Received server error (0) from primary with message "Amazon SageMaker could not get a '
        f"response from the {name} endpoint."
    )
    for started, seconds, outcome in failures:
        assert outcome == unavailable or outcome.startswith(no_response), outcome
        assert seconds < 5, f"a failure must be fast, not a hang: {seconds:.1f} s for {outcome}"
        assert started >= killed_at - 5
    assert all(o[2] == "ok" for o in outcomes if o[0] > recovered_at + 1)


def test_instances_are_processes_scaled_by_update_weights_and_capacities(
    local_aws: Aws, configs: Any, endpoint: Any
) -> None:
    """1 → 2 instances (Updating with Desired 2 / Current 1, then InService with 2 processes), a hung (SIGSTOP)
    instance replaced after its failed pings, then 0 instances (TaskCount min 0), where requests get a fast 503."""
    sm, smr = local_aws.client("sagemaker"), local_aws.client("sagemaker-runtime", retries=1)
    name = "fleet-scale"
    endpoint(name, configs("v1"))
    sm.update_endpoint_weights_and_capacities(
        EndpointName=name, DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 2}]
    )
    updating = sm.describe_endpoint(EndpointName=name)
    assert updating["EndpointStatus"] == "Updating"
    assert (
        updating["ProductionVariants"][0]["DesiredInstanceCount"],
        updating["ProductionVariants"][0]["CurrentInstanceCount"],
    ) == (2, 1)
    with pytest.raises(ClientError) as busy:
        sm.update_endpoint(EndpointName=name, EndpointConfigName=configs("v1"))
    assert busy.value.response["Error"]["Code"] == "ValidationException"
    assert "Cannot update in-progress endpoint" in busy.value.response["Error"]["Message"]
    scaled = wait_endpoint(sm, name)
    assert scaled["EndpointStatus"] == "InService"
    assert (
        scaled["ProductionVariants"][0]["DesiredInstanceCount"],
        scaled["ProductionVariants"][0]["CurrentInstanceCount"],
    ) == (2, 2)
    pids = _pids(local_aws, name)
    assert len(pids) == 2 and all(os.path.exists(f"/proc/{p}") for p in pids)
    assert {_invoke(smr, name) for _ in range(6)} == {"v1"}

    # kill -9 of one of two instances under load: only the requests it was serving at that moment fail (a 424 with
    # status 0); the rest go to the healthy one, and the fleet is back to 2 instances.
    outcomes: list[str] = []
    stop = threading.Event()

    def load() -> None:
        client = local_aws.client("sagemaker-runtime", retries=1)
        while not stop.is_set():
            try:
                outcomes.append(_invoke(client, name))
            except ClientError as exc:
                outcomes.append(f"{exc.response['Error']['Code']} {exc.response.get('OriginalStatusCode')}")

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(outcomes), lambda n: n >= 10, timeout=30, every=0.05)
        os.kill(pids[1], signal.SIGKILL)
        wait_for(lambda: _pids(local_aws, name), lambda p: len(p) == 2 and pids[1] not in p, timeout=90, every=0.2)
        served = len(outcomes)
        wait_for(lambda: len(outcomes), lambda n: n >= served + 10, timeout=30, every=0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    failed = [o for o in outcomes if o != "v1"]
    print(f"kill -9 of 1 of 2 instances under load: {len(failed)} failed of {len(outcomes)}")
    assert set(failed) <= {"ModelError 0"} and len(failed) <= len(threads), failed
    pids = _pids(local_aws, name)

    hung = pids[0]
    os.kill(hung, signal.SIGSTOP)
    try:
        wait_for(lambda: _pids(local_aws, name), lambda p: hung not in p, timeout=30, every=0.2)
        wait_for(lambda: _variant(sm, name), lambda v: v["CurrentInstanceCount"] == 2, timeout=90, every=0.2)
        assert hung not in _pids(local_aws, name) and len(_pids(local_aws, name)) == 2
    finally:
        if os.path.exists(f"/proc/{hung}"):
            os.kill(hung, signal.SIGCONT)
    assert _invoke(smr, name) == "v1"

    sm.update_endpoint_weights_and_capacities(
        EndpointName=name, DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 0}]
    )
    zero = wait_endpoint(sm, name)
    assert zero["EndpointStatus"] == "InService", zero.get("FailureReason")
    assert (
        zero["ProductionVariants"][0]["DesiredInstanceCount"],
        zero["ProductionVariants"][0]["CurrentInstanceCount"],
    ) == (0, 0)
    started = time.monotonic()
    with pytest.raises(ClientError) as none:
        _invoke(smr, name)
    assert none.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert none.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert time.monotonic() - started < 5


def test_per_variant_metrics_reach_cloudwatch(
    local_aws: Aws, configs: Any, endpoint: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invocations, InvocationsPerInstance, Invocation4XXErrors/5XXErrors, ModelLatency and OverheadLatency
    (microseconds) in AWS/SageMaker by EndpointName + VariantName, read back with GetMetricStatistics."""
    monkeypatch.setenv("LOCAL_AWS_TIME_SCALE", "60")  # SageMaker's 1-minute period lasts 1 s
    smr = local_aws.client("sagemaker-runtime", retries=1)
    cloudwatch = local_aws.client("cloudwatch")
    name = "fleet-metrics"
    endpoint(name, configs("v1"))
    since = time.time() - 120
    for _ in range(5):
        _invoke(smr, name)
    with pytest.raises(ClientError) as bad:
        _invoke(smr, name, body=b"not an image")
    assert bad.value.response.get("OriginalStatusCode") == 400
    dims = [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}]

    def total(metric: str, stat: str = "Sum") -> tuple[float, list[dict[str, Any]]]:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName=metric,
            Dimensions=dims,
            StartTime=since,
            EndTime=time.time() + 120,
            Period=60,
            Statistics=["Sum", "SampleCount", "Average", "Maximum"],
        )["Datapoints"]
        return sum(p[stat] for p in points), points

    wait_for(lambda: total("Invocations")[0], lambda n: n == 6, timeout=20, every=0.5)
    assert total("InvocationsPerInstance")[0] == pytest.approx(6.0)
    assert total("Invocation4XXErrors")[0] == 1 and total("Invocation5XXErrors")[0] == 0
    latency, points = total("ModelLatency", "SampleCount")
    assert latency == 6 and {p["Unit"] for p in points} == {"Microseconds"}
    assert 0 < max(p["Maximum"] for p in points) < 60e6  # microseconds: a 60 s request would be 6e7
    overhead, points = total("OverheadLatency", "SampleCount")
    assert overhead == 6 and {p["Unit"] for p in points} == {"Microseconds"}
    listed = cloudwatch.list_metrics(Namespace="AWS/SageMaker", Dimensions=dims)["Metrics"]
    assert {m["MetricName"] for m in listed} >= {
        "Invocations",
        "InvocationsPerInstance",
        "Invocation4XXErrors",
        "Invocation5XXErrors",
        "ModelLatency",
        "OverheadLatency",
    }


def _alarm(cloudwatch: Any, name: str, state: str) -> str:
    alarm = f"fleet-{name}-{uuid.uuid4().hex[:6]}"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=[{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "AllTraffic"}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue=state, StateReason="set by the test")
    return alarm


def _canary(alarm: str, wait_s: int = 300) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25},
                "WaitIntervalInSeconds": wait_s,
            },
            "TerminationWaitInSeconds": 0,
            "MaximumExecutionTimeoutInSeconds": 3600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm}]},
    }


def test_canary_sends_its_share_to_green_and_completes_while_the_alarm_stays_ok(
    local_aws: Aws, configs: Any, endpoint: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_AWS_TIME_SCALE", "60")  # WaitIntervalInSeconds 300 → 5 s per bake
    sm, smr = local_aws.client("sagemaker"), local_aws.client("sagemaker-runtime", retries=1)
    name = "fleet-canary"
    endpoint(name, configs("v1"))
    alarm = _alarm(local_aws.client("cloudwatch"), name, "OK")
    green = configs("v2")
    deployment = _canary(alarm)
    sm.update_endpoint(EndpointName=name, EndpointConfigName=green, DeploymentConfig=deployment)
    with pytest.raises(ClientError) as busy:
        sm.update_endpoint(EndpointName=name, EndpointConfigName=green, DeploymentConfig=deployment)
    assert busy.value.response["Error"]["Message"] == (
        f'Cannot update in-progress endpoint "arn:aws:sagemaker:us-east-1:123456789012:endpoint/{name}".'
    )
    baking = wait_for(
        lambda: sm.describe_endpoint(EndpointName=name),
        lambda d: (
            d.get("PendingDeploymentSummary", {})
            .get("ProductionVariants", [{}])[0]
            .get("VariantStatus", [{}])[0]
            .get("Status")
            == "Baking"
        ),
        timeout=90,
        every=0.1,
    )
    assert baking["EndpointStatus"] == "Updating" and baking["EndpointConfigName"] != green
    assert baking["PendingDeploymentSummary"]["EndpointConfigName"] == green
    assert_output_shape(
        "DescribeEndpoint", RawResponses(local_aws.client("sagemaker")).call("DescribeEndpoint", EndpointName=name)
    )
    served = [_invoke(smr, name) for _ in range(120)]  # well inside the 5 s canary bake
    share = served.count("v2") / len(served)
    print(f"canary share of green during the bake: {share:.2f} of {len(served)} requests (CanarySize 25 %)")
    assert 0.10 <= share <= 0.42, share
    done = wait_endpoint(sm, name, timeout_s=120)
    assert done["EndpointStatus"] == "InService" and done["EndpointConfigName"] == green
    assert "FailureReason" not in done and "PendingDeploymentSummary" not in done
    assert done["LastDeploymentConfig"] == deployment
    assert {_invoke(smr, name) for _ in range(10)} == {"v2"}


def test_an_alarm_in_the_bake_rolls_back_to_blue(
    local_aws: Aws, configs: Any, endpoint: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_AWS_TIME_SCALE", "60")
    sm, smr = local_aws.client("sagemaker"), local_aws.client("sagemaker-runtime", retries=1)
    cloudwatch = local_aws.client("cloudwatch")
    name = "fleet-rollback"
    blue = configs("v1")
    endpoint(name, blue)
    alarm = _alarm(cloudwatch, name, "OK")
    deployment = _canary(alarm, wait_s=600)
    sm.update_endpoint(EndpointName=name, EndpointConfigName=configs("v2"), DeploymentConfig=deployment)
    wait_for(lambda: {_invoke(smr, name) for _ in range(20)}, lambda seen: "v2" in seen, timeout=90, every=0.1)
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5XX errors on the canary")
    statuses = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        described = sm.describe_endpoint(EndpointName=name)
        statuses.append(described["EndpointStatus"])
        if described["EndpointStatus"] == "InService":
            break
        time.sleep(0.05)
    print("statuses after the alarm:", sorted(set(statuses), key=statuses.index))
    print("DescribeEndpoint after the rollback:", json.dumps(described, default=str))
    assert_output_shape(
        "DescribeEndpoint", RawResponses(local_aws.client("sagemaker")).call("DescribeEndpoint", EndpointName=name)
    )
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == blue
    assert alarm in described["FailureReason"] and "rolled back" in described["FailureReason"]
    assert described["LastDeploymentConfig"] == deployment
    assert "PendingDeploymentSummary" not in described
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    assert {_invoke(smr, name) for _ in range(20)} == {"v1"}
    assert set(statuses) <= {"Updating", "RollingBack", "InService"}


def test_chaos_endpoint_kills_an_instance_after_its_nth_answer_and_no_request_fails(
    local_aws: Aws, configs: Any, endpoint: Any
) -> None:
    """[chaos.endpoint] kill_after_invocations = 3 on a 2-instance endpoint: the 3rd answer arrives, then that
    instance's process is gone; the next requests are refused there and served by the other one; it is replaced."""
    sm, smr = local_aws.client("sagemaker"), local_aws.client("sagemaker-runtime", retries=1)
    name = "fleet-chaos-kill"
    endpoint(name, configs("v1", count=2))
    before = _pids(local_aws, name)
    assert len(before) == 2
    config = local_aws.home / "config.toml"
    config.write_text("[chaos.endpoint]\nkill_after_invocations = 3\ntimes = 1\n")
    try:
        answers = [_invoke(smr, name) for _ in range(12)]  # sequential: the kill never meets a request in flight
    finally:
        config.unlink()
    assert answers == ["v1"] * 12
    assert sum(not os.path.exists(f"/proc/{pid}") or _zombie(pid) for pid in before) == 1
    wait_for(lambda: _pids(local_aws, name), lambda pids: len(pids) == 2 and pids != before, timeout=120)
    assert _variant(sm, name)["CurrentInstanceCount"] == 2


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True
