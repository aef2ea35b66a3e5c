"""local_aws.cloudformation.Resolver: parameters, pseudo parameters, each intrinsic, conditions, NoValue, refusals."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from local_aws.cloudformation import NO_VALUE, Resolver, TemplateError
from local_aws.constants import ACCOUNT_ID, DEFAULT_STACK_NAME, REGION
from tests.unit.local_aws.cloudformation.cfn_samples import BASE, template


@pytest.fixture(scope="module")
def r() -> Resolver:
    return Resolver(template())


@pytest.fixture(scope="module")
def prod() -> Resolver:
    return Resolver(template(), {"Env": "prod"})


# ---------------------------------------------------------------------------------------------- parameters
def test_parameter_values_are_strings_and_lists(r: Resolver) -> None:
    assert r.ref("Env") == "dev"
    assert r.ref("Count") == "2"  # Number parameters are strings once referenced
    assert r.ref("Zones") == ["a", "b", "c"]  # space-trimmed
    assert r.ref("Ports") == ["80", "443"]
    assert r.ref("Flag") == "true"  # a YAML boolean default is CloudFormation's "true"
    assert Resolver(template(), {"Count": 5, "Zones": ["x "]}).parameters == {
        **r.parameters,
        "Count": "5",
        "Zones": ["x"],
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Nope": "1"}, r"unknown template parameter\(s\) \['Nope'\]; valid: \["),
        ({"Env": "qa"}, r"Env='qa' is not allowed; valid: \['dev', 'prod'\]"),
        ({"Count": "9"}, r"Count='9' is above MaxValue 5"),
        ({"Count": "0"}, r"Count='0' is below MinValue 1"),
        ({"Count": "two"}, r"Count='two' is not a number"),
        ({"Ports": "80,http"}, r"Ports='http' is not a number"),
        ({"Name": "UPPER"}, r"Name='UPPER' is not allowed: must match \[a-z\]\+"),
        ({"Name": "x"}, r"shorter than MinLength 2"),
        ({"Name": "abcdefghi"}, r"longer than MaxLength 8"),
        ({"Env": ["dev"]}, r"takes one value"),
    ],
)
def test_parameter_values_cloudformation_rejects(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        Resolver(template(), overrides)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{Type: String}", r"P has no Default and no override"),
        ("{Type: AWS::SSM::Parameter::Value<String>, Default: /x}", r"SSM type"),
        ("{Type: Strng, Default: x}", r"unknown Type 'Strng'"),
        ("{Default: x}", r"P has no Type"),
    ],
)
def test_parameter_declarations_cloudformation_rejects(spec: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        Resolver(template(base=f"Parameters:\n  P: {spec}\nResources:\n  B: {{Type: AWS::S3::Bucket}}\n"))


# ---------------------------------------------------------------------------------------------- pseudo parameters
def test_pseudo_parameters(r: Resolver) -> None:
    assert [r.ref(f"AWS::{n}") for n in ("AccountId", "Region", "Partition", "URLSuffix", "StackName")] == [
        ACCOUNT_ID, REGION, "aws", "amazonaws.com", DEFAULT_STACK_NAME,
    ]  # fmt: skip
    assert r.ref("AWS::NotificationARNs") == []
    assert r.ref("AWS::NoValue") is NO_VALUE
    assert re.fullmatch(
        rf"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{DEFAULT_STACK_NAME}/[0-9a-f-]{{36}}",
        r.ref("AWS::StackId"),
    )
    assert r.ref("AWS::StackId") == Resolver(template()).ref("AWS::StackId")  # stable
    with pytest.raises(TemplateError, match=r"unknown pseudo parameter AWS::Bogus"):
        r.ref("AWS::Bogus")


@pytest.mark.parametrize(
    ("region", "partition", "suffix"),
    [("eu-west-1", "aws", "amazonaws.com"), ("cn-north-1", "aws-cn", "amazonaws.com.cn"),
     ("us-gov-west-1", "aws-us-gov", "amazonaws.com")],
)  # fmt: skip
def test_partition_follows_the_region(region: str, partition: str, suffix: str) -> None:
    resolver = Resolver(template(), region=region, account_id="111122223333", stack_name="s")
    assert resolver.resolve({"Fn::Sub": "${AWS::Partition}|${AWS::URLSuffix}|${AWS::Region}"}) == (
        f"{partition}|{suffix}|{region}"
    )
    assert resolver.get_att("Key", "Arn").startswith(f"arn:{partition}:kms:{region}:111122223333:key/")


@pytest.mark.parametrize(
    "identity",
    [{"account_id": "123"}, {"region": "mars-1"}, {"stack_name": "1stack"}, {"stack_name": "has_underscore"}],
)
def test_identity_is_validated(identity: dict[str, str]) -> None:
    with pytest.raises(TemplateError):
        Resolver(template(), **identity)


# ---------------------------------------------------------------------------------------------- Ref and GetAtt
def test_ref_of_resources_returns_what_each_type_documents(r: Resolver) -> None:
    assert r.ref("Bucket") == f"b-dev-{ACCOUNT_ID}"  # bucket name
    assert re.fullmatch(r"dogbreed-dev-generated-[a-z0-9]{12}", r.ref("Generated"))  # generated, lowercase
    assert re.fullmatch(r"dogbreed-dev-Role-[A-Z0-9]{12}", r.ref("Role"))  # role name
    assert re.fullmatch(r"[0-9a-f-]{36}", r.ref("Key"))  # key id
    assert r.ref("Machine") == f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:dev-sm"  # ARN
    assert r.ref("Topic") == r.get_att("Topic", "TopicArn")  # SNS: the ARN
    assert r.ref("Queue") == f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/q"  # SQS: the URL
    assert re.fullmatch(r"[a-z0-9]{10}", r.ref("Api"))  # REST API id
    assert r.ref("Fn") == "f"
    assert Resolver(template()).ref("Generated") == r.ref("Generated")  # stable between runs


def test_generated_names_fit_the_type_limits() -> None:
    resolver = Resolver(template(), stack_name="s" * 100)
    assert len(resolver.ref("Generated")) == 63
    assert len(resolver.ref("Role")) == 64


def test_get_att_values(r: Resolver) -> None:
    assert r.get_att("Bucket", "Arn") == f"arn:aws:s3:::b-dev-{ACCOUNT_ID}"
    assert r.get_att("Bucket", "RegionalDomainName") == f"b-dev-{ACCOUNT_ID}.s3.{REGION}.amazonaws.com"
    assert r.get_att("Role", "Arn") == f"arn:aws:iam::{ACCOUNT_ID}:role/svc/{r.ref('Role')}"  # the role's Path
    assert re.fullmatch(r"AROA[A-Z0-9]{17}", r.get_att("Role", "RoleId"))
    assert r.get_att("Key", "Arn") == f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{r.ref('Key')}"
    assert r.get_att("Machine", "Name") == "dev-sm"
    assert r.get_att("Fn", "Arn") == f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:f"
    assert r.resolve({"Fn::GetAtt": "Queue.Arn"}) == f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:q"
    assert r.resolve({"Fn::GetAtt": ["Machine", {"Fn::Sub": "Arn"}]}) == r.ref("Machine")  # attribute by intrinsic
    with pytest.raises(TemplateError, match=r"Fn::GetAtt takes a literal logical id"):
        r.resolve({"Fn::GetAtt": [{"Ref": "Env"}, "Arn"]})


def test_sam_generated_references(r: Resolver) -> None:
    assert r.ref("Api.Stage") == "v1"
    assert re.fullmatch(r"[a-z0-9]{10}", r.ref("Api.Deployment"))
    assert r.ref("Fn.Alias") == f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:f:live"
    assert r.ref("Fn.Version") == f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:f:1"
    with pytest.raises(TemplateError, match=r"Ref Api.Bogus: not a parameter, resource or SAM-generated"):
        r.ref("Api.Bogus")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ({"Ref": "Missing"}, r"unknown logical id 'Missing'"),
        ({"Ref": "Odd"}, r"no local value for Ref/GetAtt of Odd \(AWS::EC2::VPC\)"),
        ({"Fn::GetAtt": ["Bucket", "Bogus"]}, r"no local value for Fn::GetAtt Bucket.Bogus \(AWS::S3::Bucket\)"),
        ({"Fn::GetAtt": ["Topic"]}, r"Fn::GetAtt takes a list of 2 items"),
        ({"Ref": "ProdOnly"}, r"ProdOnly is not created \(Condition IsProd is false\)"),
        ({"Fn::GetAtt": ["ProdOnly", "TopicArn"]}, r"ProdOnly is not created"),
        ({"Ref": ["Env"]}, r"Ref must resolve to a string"),
    ],
)
def test_unresolvable_references_raise(r: Resolver, expression: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        r.resolve(expression)


def test_conditional_resources_exist_only_when_their_condition_holds(r: Resolver, prod: Resolver) -> None:
    assert not r.resource_exists("ProdOnly") and prod.resource_exists("ProdOnly")
    assert "ProdOnly" not in r.resolve_resources()
    assert prod.resolve_resources()["ProdOnly"] == {"Type": "AWS::SNS::Topic", "Condition": "IsProd"}
    assert prod.ref("ProdOnly").startswith(f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:dogbreed-dev-ProdOnly-")
    # A reference in the branch that is not taken is fine, as in CloudFormation.
    guarded = {"Fn::If": ["IsProd", {"Ref": "ProdOnly"}, {"Ref": "AWS::NoValue"}]}
    assert r.resolve({"T": guarded}) == {}


# ---------------------------------------------------------------------------------------------- Fn::Sub
def test_sub_forms(r: Resolver) -> None:
    assert r.resolve({"Fn::Sub": "${Env}-${AWS::Region}-${Bucket}-${Fn.Arn}"}) == (
        f"dev-{REGION}-b-dev-{ACCOUNT_ID}-arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:f"
    )
    assert r.resolve({"Fn::Sub": ["${A}/${Env}", {"A": {"Fn::Join": ["+", {"Ref": "Zones"}]}}]}) == "a+b+c/dev"
    assert r.resolve({"Fn::Sub": "${!Literal}-${!Env}"}) == "${Literal}-${Env}"
    assert r.resolve({"Fn::Sub": "no variables"}) == "no variables"


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("${Zones}", r"Fn::Sub \$\{Zones\} must resolve to a string"),
        ("${Nope}", r"unknown logical id 'Nope'"),
        ("${Bucket.Bogus}", r"Fn::GetAtt Bucket.Bogus"),
        (["${A}"], r"Fn::Sub takes a list of 2 items"),
        (["${A}", "not-a-map"], r"Fn::Sub takes \[string, \{variables\}\]"),
    ],
)
def test_sub_errors(r: Resolver, arg: Any, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        r.resolve({"Fn::Sub": arg})


# ---------------------------------------------------------------------------------------------- other functions
def test_join_select_split_find_in_map_base64_get_azs(r: Resolver, prod: Resolver) -> None:
    assert r.resolve({"Fn::Join": [",", ["x", {"Ref": "Count"}, {"Ref": "AWS::NoValue"}, True]]}) == "x,2,true"
    assert r.resolve({"Fn::Join": ["-", {"Ref": "Zones"}]}) == "a-b-c"
    assert r.resolve({"Fn::Select": ["1", {"Ref": "Zones"}]}) == "b"
    assert r.resolve({"Fn::Select": [0, {"Fn::Split": ["/", "x/y"]}]}) == "x"
    assert r.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Type"]}) == "small"
    assert prod.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Type"]}) == "large"
    assert r.resolve({"Fn::Base64": {"Fn::Sub": "${Env}"}}) == base64.b64encode(b"dev").decode()
    assert r.resolve({"Fn::GetAZs": ""}) == [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
    assert r.resolve({"Fn::GetAZs": {"Ref": "AWS::Region"}}) == [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
    assert r.resolve({"Fn::GetAZs": "eu-west-1"})[0] == "eu-west-1a"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ({"Fn::Join": [",", "not-a-list"]}, r"Fn::Join takes a list of values"),
        ({"Fn::Join": [",", [["nested"]]]}, r"Fn::Join item must resolve to a string"),
        ({"Fn::Select": [3, ["a"]]}, r"Fn::Select index '3' is out of range for 1 items"),
        ({"Fn::Select": [-1, ["a"]]}, r"out of range"),
        ({"Fn::Select": ["²", ["a"]]}, r"out of range"),
        ({"Fn::Select": [0, "a"]}, r"Fn::Select takes a list"),
        ({"Fn::FindInMap": ["Sizes", "qa", "Type"]}, r"Fn::FindInMap Sizes/qa/Type has no entry"),
        ({"Fn::FindInMap": ["Sizes", "dev"]}, r"Fn::FindInMap takes \[MapName"),
        ({"Fn::FindInMap": ["Sizes", "qa", "Type", {"DefaultValue": "x"}]}, r"needs 'Transform: AWS::Lang"),
        ({"Fn::Length": [1, 2]}, r"Fn::Length needs 'Transform: AWS::LanguageExtensions'"),
        ({"Fn::ToJsonString": {"a": 1}}, r"Fn::ToJsonString needs 'Transform: AWS::LanguageExtensions'"),
        ({"Fn::Base64": ["a"]}, r"Fn::Base64 value must resolve to a string"),
    ],
)
def test_malformed_functions_raise(r: Resolver, expression: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        r.resolve(expression)


def test_language_extensions_functions() -> None:
    resolver = Resolver(template("Transform: AWS::LanguageExtensions\n"))
    assert resolver.resolve({"Fn::Length": {"Ref": "Zones"}}) == 3
    assert resolver.resolve({"Fn::ToJsonString": {"k": {"Ref": "Env"}, "n": [1]}}) == '{"k":"dev","n":[1]}'
    assert resolver.resolve({"Fn::FindInMap": ["Sizes", "qa", "Type", {"DefaultValue": "tiny"}]}) == "tiny"
    assert resolver.resolve({"Fn::FindInMap": ["Sizes", "dev", "Type", {"DefaultValue": "tiny"}]}) == "small"


# ---------------------------------------------------------------------------------------------- conditions
def test_conditions(r: Resolver, prod: Resolver) -> None:
    values = {
        name: (r.condition(name), prod.condition(name)) for name in ("IsProd", "NotProd", "ProdAndTwo", "ProdOrTwo")
    }
    assert values == {"IsProd": (False, True), "NotProd": (True, False), "ProdAndTwo": (False, True),
                      "ProdOrTwo": (True, True)}  # fmt: skip
    assert r.resolve({"Fn::If": ["IsProd", "p", "d"]}) == "d"
    assert prod.resolve({"Fn::If": ["IsProd", "p", "d"]}) == "p"
    assert r.resolve({"Fn::Equals": [{"Ref": "Flag"}, True]}) is True  # booleans compare as "true"


@pytest.mark.parametrize(
    ("conditions", "use", "message"),
    [
        ("  Loop: !Condition Loop\n", "Loop", r"condition Loop refers to itself"),
        ("  Plain: !Ref Env\n", "Plain", r"condition Plain must be Fn::Equals/And/Or/Not or Condition"),
        ("  One: !And [!Equals [a, a]]\n", "One", r"Fn::And takes 2 to 10 conditions"),
        ("  NotCond: !Or [!Equals [a, a], !Ref Env]\n", "NotCond", r"Fn::Or item must be Fn::Equals"),
    ],
)
def test_bad_conditions_raise(conditions: str, use: str, message: str) -> None:
    resolver = Resolver(template(base=BASE.replace("Conditions:\n", "Conditions:\n" + conditions)))
    with pytest.raises(TemplateError, match=message):
        resolver.condition(use)


def test_unknown_condition_lists_the_valid_ones(r: Resolver) -> None:
    with pytest.raises(TemplateError, match=r"unknown condition 'Nope'; valid: \['IsProd', 'NotProd'"):
        r.resolve({"Fn::If": ["Nope", 1, 2]})


# ---------------------------------------------------------------------------------------------- NoValue
def test_no_value_drops_keys_and_items(r: Resolver, prod: Resolver) -> None:
    value = {
        "Keep": 1,
        "Drop": {"Ref": "AWS::NoValue"},
        "List": ["a", {"Fn::If": ["IsProd", "p", {"Ref": "AWS::NoValue"}]}, "b"],
        "Nested": {"Inner": {"Fn::If": ["NotProd", {"Ref": "AWS::NoValue"}, "x"]}},
    }
    assert r.resolve(value) == {"Keep": 1, "List": ["a", "b"], "Nested": {}}
    assert prod.resolve(value) == {"Keep": 1, "List": ["a", "p", "b"], "Nested": {"Inner": "x"}}
    assert r.resolve({"Ref": "AWS::NoValue"}) is NO_VALUE


# ---------------------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ({"Fn::ImportValue": "x"}, r"Fn::ImportValue reads another stack's exports"),
        ({"Fn::Cidr": ["10.0.0.0/16", 2, 8]}, r"Fn::Cidr is not modelled locally"),
        ({"Fn::Transform": {"Name": "AWS::Include"}}, r"Fn::Transform runs a macro"),
        ({"Fn::Contains": [["a"], "a"]}, r"Fn::Contains is a rule function"),
        ({"Fn::Bogus": 1}, r"Fn::Bogus is not an intrinsic function this resolver knows"),
        ({"Fn::ForEach::Loop": ["x", ["a"], {}]}, r"Fn::ForEach::Loop is not an intrinsic"),
        ({"Ref": "Env", "Extra": 1}, r"an intrinsic function must be the only key of its mapping"),
        ({"Fn::Sub": "x", "Other": 1}, r"only key of its mapping"),
    ],
)
def test_unknown_constructs_raise_naming_the_construct(r: Resolver, expression: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        r.resolve(expression)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("Transform: MyMacro\n", r"Transform \['MyMacro'\] cannot run locally"),
        ("Rules:\n  R: {Assertions: []}\n", r"the Rules section is not evaluated locally"),
    ],
)
def test_templates_that_cannot_be_resolved_locally(extra: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        Resolver(template(extra))


def test_not_a_template() -> None:
    with pytest.raises(TemplateError, match=r"not a CloudFormation template"):
        Resolver({"Parameters": {}})
