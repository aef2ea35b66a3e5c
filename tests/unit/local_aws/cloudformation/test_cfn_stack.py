"""local_aws.cloudformation's stack helpers (what the local runtime reads) and the real template end to end."""

from __future__ import annotations

import pytest

from local_aws.cloudformation import (
    Resolver,
    TemplateError,
    api_events,
    definition_substitutions,
    function_environment,
    function_property,
    load_template,
    stack_outputs,
)
from local_aws.constants import ACCOUNT_ID
from tests.unit.local_aws.cloudformation.cfn_samples import template

OUTPUTS = """
Outputs:
  BucketName: {Value: !Ref Bucket}
  Count: {Value: 3}
  ProdTopic: {Condition: IsProd, Value: !Ref ProdOnly}
"""


def test_stack_outputs_skip_false_conditions() -> None:
    tpl = template(OUTPUTS)
    assert stack_outputs(tpl, Resolver(tpl)) == {"BucketName": f"b-dev-{ACCOUNT_ID}", "Count": "3"}
    prod_outputs = stack_outputs(tpl, Resolver(tpl, {"Env": "prod"}))
    assert prod_outputs["ProdTopic"].startswith("arn:aws:sns:")
    assert stack_outputs(template(), Resolver(template())) == {}  # no Outputs section


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ("Outputs:\n  L: {Value: !Ref Zones}\n", r"output L must resolve to a string \(use Fn::Join"),
        ("Outputs:\n  N: {Description: no value}\n", r"output N has no Value"),
        ("Outputs:\n  X: {Value: !Ref Missing}\n", r"unknown logical id 'Missing'"),
    ],
)
def test_bad_outputs_raise(outputs: str, message: str) -> None:
    tpl = template(outputs)
    with pytest.raises(TemplateError, match=message):
        stack_outputs(tpl, Resolver(tpl))


GLOBALS = """
Globals:
  Function:
    Timeout: 10
    Layers: [g1]
    Environment: {Variables: {SHARED: g, OVERRIDDEN: g}}
    Tags: !Ref AWS::NoValue
"""
FUNCTION = """
  Svc:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 20
      Layers: [l1]
      Tags: {own: tag}
      Environment: {Variables: {OVERRIDDEN: !Ref Env, OWN: !Ref Count, GONE: !Ref AWS::NoValue}}
      ReservedConcurrentExecutions: !If [IsProd, 5, !Ref AWS::NoValue]
      Events:
        Get: {Type: Api, Properties: {Path: /x, Method: get}}
        Post: {Type: Api, Properties: {Path: /a, Method: post}}
        Timer: {Type: Schedule, Properties: {Schedule: rate(1 hour)}}
"""


def test_function_helpers_merge_globals_as_sam_does() -> None:
    tpl = template(FUNCTION + GLOBALS)  # BASE ends in its Resources section
    assert function_property(tpl, "Svc", "Timeout") == 20  # scalars: the function's value
    assert function_property(tpl, "Svc", "Layers") == ["g1", "l1"]  # lists: Globals first
    assert function_property(tpl, "Svc", "Tags") == {"own": "tag"}  # an intrinsic is a scalar for merging
    assert function_property(tpl, "Svc", "ReservedConcurrentExecutions") is None  # AWS::NoValue
    assert function_property(tpl, "Svc", "ReservedConcurrentExecutions", {"Env": "prod"}) == 5
    assert function_property(tpl, "Svc", "MemorySize") is None
    assert function_environment(tpl, "Svc") == {"SHARED": "g", "OVERRIDDEN": "dev", "OWN": "2"}
    assert api_events(tpl, "Svc") == [("/a", "POST"), ("/x", "GET")]
    with pytest.raises(TemplateError, match=r"'Bucket' is not a function"):
        api_events(tpl, "Bucket")
    with pytest.raises(TemplateError, match=r"Bucket is a AWS::S3::Bucket"):
        function_property(tpl, "Bucket", "Timeout")


def test_function_helpers_take_the_starts_resolver() -> None:
    """A Resolver gives the values its template and parameters give; settings beside it are refused, not ignored."""
    tpl = template(FUNCTION + GLOBALS)
    prod = Resolver(tpl, {"Env": "prod"})
    assert function_property(prod, "Svc", "ReservedConcurrentExecutions") == 5
    assert function_property(prod, "Svc", "Layers") == function_property(tpl, "Svc", "Layers", {"Env": "prod"})
    assert function_environment(prod, "Svc") == function_environment(tpl, "Svc", {"Env": "prod"})
    for given in ({"overrides": {"Env": "dev"}}, {"env": "prod"}, {"region": "eu-west-1"}):
        with pytest.raises(TypeError, match=r"with a Resolver"):
            function_property(prod, "Svc", "Timeout", **given)


def test_definition_substitutions() -> None:
    tpl = template(
        "  Pipeline:\n    Type: AWS::StepFunctions::StateMachine\n    Properties:\n      DefinitionSubstitutions:\n"
        "        {Bucket: !Ref Bucket, Count: !Ref Count, Flag: true, Gone: !Ref AWS::NoValue}\n"
    )
    subs = definition_substitutions(tpl, {"Env": "prod"}, logical_id="Pipeline", region="eu-west-1")
    assert subs == {"Bucket": f"b-prod-{ACCOUNT_ID}", "Count": "2", "Flag": "true"}
    with pytest.raises(TemplateError, match=r"Bucket is a AWS::S3::Bucket"):
        definition_substitutions(tpl, logical_id="Bucket")
    resolver = Resolver(tpl, {"Env": "prod"}, region="eu-west-1")
    assert definition_substitutions(resolver, logical_id="Pipeline") == subs


# ---------------------------------------------------------------------------------------------- the real template
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"ApiAuthMode": "API_KEY", "LambdaProvisionedConcurrency": "3", "DemoPage": "Enabled"},
        {"TrainingImageUri": f"{ACCOUNT_ID}.dkr.ecr.eu-west-1.amazonaws.com/x:1"},
    ],
)
def test_the_real_template_resolves_completely(overrides: dict[str, str]) -> None:
    tpl = load_template()
    resolver = Resolver(tpl, overrides, region="eu-west-1")
    resources = resolver.resolve_resources()
    text = repr(resources)
    assert "Fn::" not in text and "'Ref'" not in text  # nothing passed through unresolved
    assert "us-east-1" not in text  # every region-dependent value follows the region
    # Outputs with a Condition are left out when it is false (outputs-section-structure.html).
    left_out = (set() if overrides.get("ApiAuthMode") == "API_KEY" else {"ApiKeyId"}) | (
        set() if overrides.get("DemoPage") == "Enabled" else {"DemoPageUrl"}
    )
    assert set(stack_outputs(tpl, resolver)) == set(tpl["Outputs"]) - left_out
