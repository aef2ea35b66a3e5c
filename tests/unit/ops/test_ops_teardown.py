"""ops.teardown: find what the state machine created for an endpoint and delete it in dependency order.

botocore's Stubber fixes the order of each client's calls; the echoed lines fix the order across the two clients.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from ops.teardown import TeardownPlan, created_by_workflow, execute_teardown, plan_teardown
from tests.unit.ops.ops_fakes import client

MD5 = "0123456789abcdef0123456789abcdef"
AT = dt.datetime(2025, 4, 9, tzinfo=dt.UTC)
RESOURCE = "endpoint/dogbreed-dev/variant/AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


@pytest.mark.parametrize(
    ("name", "ours"),
    [
        (f"dogbreed-dev-{MD5}", True),
        (f"dogbreed-dev-2-{MD5}", False),  # another environment sharing the prefix
        ("dogbreed-dev", False),
        ("dogbreed-dev-", False),
        (f"dogbreed-prod-{MD5}", False),
        (f"xdogbreed-dev-{MD5}", False),
    ],
)
def test_created_by_workflow(name: str, ours: bool) -> None:
    """Only ``<prefix>-<token without dashes>`` is the workflow's; other environments' names never match."""
    assert created_by_workflow(name, "dogbreed-dev") is ours


def teardown_stubs(endpoint_exists: bool) -> tuple[Any, Any, Stubber, Stubber]:
    sm, aas = client("sagemaker"), client("application-autoscaling")
    sm_stub, aas_stub = Stubber(sm), Stubber(aas)
    if endpoint_exists:
        sm_stub.add_response(
            "describe_endpoint",
            {
                "EndpointName": "dogbreed-dev",
                "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogbreed-dev",
                "EndpointConfigName": f"dogbreed-dev-{MD5}",
                "EndpointStatus": "InService",
                "CreationTime": AT,
                "LastModifiedTime": AT,
            },
            {"EndpointName": "dogbreed-dev"},
        )
    else:
        sm_stub.add_client_error(
            "describe_endpoint", service_error_code="ValidationException", service_message="Could not find endpoint"
        )
    target = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": RESOURCE,
        "ScalableDimension": DIMENSION,
        "MinCapacity": 1,
        "MaxCapacity": 2,
        "RoleARN": "arn:aws:iam::123456789012:role/aws-service-role/x",
        "CreationTime": AT,
    }
    other = {**target, "ResourceId": "endpoint/dogbreed-prod/variant/AllTraffic"}
    aas_stub.add_response(
        "describe_scalable_targets",
        {"ScalableTargets": [target, other] if endpoint_exists else [other]},
        {"ServiceNamespace": "sagemaker"},
    )
    if endpoint_exists:
        policy = {
            "PolicyARN": "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:x",
            "PolicyName": "dogbreed-dev-invocations",
            "ServiceNamespace": "sagemaker",
            "ResourceId": RESOURCE,
            "ScalableDimension": DIMENSION,
            "PolicyType": "TargetTrackingScaling",
            "CreationTime": AT,
        }
        aas_stub.add_response(
            "describe_scaling_policies",
            {"ScalingPolicies": [policy]},
            {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE},
        )
    configs = [f"dogbreed-dev-{MD5}", f"dogbreed-dev-{MD5[::-1]}", f"dogbreed-dev-2-{MD5}"]
    sm_stub.add_response(
        "list_endpoint_configs",
        {
            "EndpointConfigs": [
                {"EndpointConfigName": n, "EndpointConfigArn": f"arn:{n}", "CreationTime": AT} for n in configs
            ]
        },
        {"NameContains": "dogbreed-dev"},
    )
    sm_stub.add_response(
        "list_models",
        {"Models": [{"ModelName": n, "ModelArn": f"arn:{n}", "CreationTime": AT} for n in configs[:1]]},
        {"NameContains": "dogbreed-dev"},
    )
    return sm, aas, sm_stub, aas_stub


def test_teardown_deletes_scaling_then_endpoint_then_configs_and_models() -> None:
    """Scaling policy, scalable target, endpoint, configs, models: in that order, and nothing of dogbreed-dev-2."""
    sm, aas, sm_stub, aas_stub = teardown_stubs(endpoint_exists=True)
    aas_stub.add_response(
        "delete_scaling_policy",
        {},
        {
            "PolicyName": "dogbreed-dev-invocations",
            "ServiceNamespace": "sagemaker",
            "ResourceId": RESOURCE,
            "ScalableDimension": DIMENSION,
        },
    )
    aas_stub.add_response(
        "deregister_scalable_target",
        {},
        {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE, "ScalableDimension": DIMENSION},
    )
    sm_stub.add_response("delete_endpoint", {}, {"EndpointName": "dogbreed-dev"})
    sm_stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": f"dogbreed-dev-{MD5}"})
    sm_stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": f"dogbreed-dev-{MD5[::-1]}"})
    sm_stub.add_response("delete_model", {}, {"ModelName": f"dogbreed-dev-{MD5}"})
    done: list[str] = []
    with sm_stub, aas_stub:
        plan = plan_teardown(sm, aas, "dogbreed-dev", "dogbreed-dev")
        assert plan.endpoint == "dogbreed-dev"
        assert plan.scalable_targets == [RESOURCE]  # not dogbreed-prod's
        assert plan.scaling_policies == [(RESOURCE, "dogbreed-dev-invocations")]
        assert plan.endpoint_configs == sorted([f"dogbreed-dev-{MD5}", f"dogbreed-dev-{MD5[::-1]}"])
        assert f"dogbreed-dev-2-{MD5}" not in plan.endpoint_configs
        execute_teardown(sm, aas, plan, done.append)
        sm_stub.assert_no_pending_responses()
        aas_stub.assert_no_pending_responses()
    assert done == [
        "deleted scaling policy dogbreed-dev-invocations",
        f"deregistered scalable target {RESOURCE}",
        "deleted endpoint dogbreed-dev",
        f"deleted endpoint config dogbreed-dev-{MD5}",
        f"deleted endpoint config dogbreed-dev-{MD5[::-1]}",
        f"deleted model dogbreed-dev-{MD5}",
    ]


def test_teardown_when_the_endpoint_is_already_gone_still_cleans_configs_and_models() -> None:
    """No endpoint ("Could not find endpoint"): no scaling to remove, configs and models still planned."""
    sm, aas, sm_stub, aas_stub = teardown_stubs(endpoint_exists=False)
    with sm_stub, aas_stub:
        plan = plan_teardown(sm, aas, "dogbreed-dev", "dogbreed-dev")
        sm_stub.assert_no_pending_responses()
    assert plan.endpoint is None and plan.scalable_targets == [] and plan.scaling_policies == []
    assert len(plan.endpoint_configs) == 2 and plan.models == [f"dogbreed-dev-{MD5}"]


def test_other_describe_errors_are_not_taken_for_a_missing_endpoint() -> None:
    """AccessDenied on DescribeEndpoint propagates: deleting on a guess is not an option."""
    sm, aas = client("sagemaker"), client("application-autoscaling")
    with Stubber(sm) as stub:
        stub.add_client_error("describe_endpoint", "AccessDeniedException", "denied")
        with pytest.raises(ClientError, match="AccessDeniedException"):
            plan_teardown(sm, aas, "dogbreed-dev", "dogbreed-dev")


def test_plan_lines_list_everything_in_deletion_order() -> None:
    """The printed plan names each resource; an empty plan prints nothing."""
    plan = TeardownPlan("ep", ["endpoint/ep/variant/A"], [("endpoint/ep/variant/A", "pol")], ["ep-1"], ["ep-1"])
    assert plan.lines() == [
        "endpoint        ep",
        "scaling policy  pol on endpoint/ep/variant/A",
        "scalable target endpoint/ep/variant/A",
        "endpoint config ep-1",
        "model           ep-1",
    ]
    assert TeardownPlan(None, [], [], [], []).lines() == []
