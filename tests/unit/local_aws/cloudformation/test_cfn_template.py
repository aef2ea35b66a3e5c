"""local_aws.cloudformation.template: the CFN-tag-aware YAML loader and samconfig environments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from local_aws.cloudformation import (
    TemplateError,
    load_template,
    make_resolver,
    read_samconfig,
    samconfig_overrides,
    samconfig_stack_name,
)
from local_aws.cloudformation import template as template_module
from local_aws.constants import SAMCONFIG_PATH, TEMPLATE_PATH


def write(tmp_path: Path, text: str, name: str = "template.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------------- loader
def test_short_forms_become_long_forms(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
AWSTemplateFormatVersion: 2010-09-09
Resources:
  R:
    Type: AWS::S3::Bucket
    Properties:
      A: !Ref P
      B: !GetAtt Res.Attr.Nested
      C: !GetAtt [Res, Attr]
      D: !Sub ["${x}", {x: !Ref AWS::Region}]
      E: !If [Cond, !Join ["-", [a, !Select [0, !Split [",", "b,c"]]]], !Ref AWS::NoValue]
      F: !Equals [!FindInMap [M, k, v], !Base64 text]
      G: !And [!Condition C1, !Or [!Not [!Condition C2], !Condition C3]]
      H: !GetAZs ""
      I: !Length [1, 2]
      J: !ToJsonString {a: 1}
      K: !ImportValue other
""",
    )
    template = load_template(path)
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"  # a string, not a date
    props = template["Resources"]["R"]["Properties"]
    assert props["A"] == {"Ref": "P"}
    assert props["B"] == {"Fn::GetAtt": ["Res", "Attr.Nested"]}
    assert props["C"] == {"Fn::GetAtt": ["Res", "Attr"]}
    assert props["D"] == {"Fn::Sub": ["${x}", {"x": {"Ref": "AWS::Region"}}]}
    assert props["E"] == {
        "Fn::If": [
            "Cond",
            {"Fn::Join": ["-", ["a", {"Fn::Select": [0, {"Fn::Split": [",", "b,c"]}]}]]},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert props["F"] == {"Fn::Equals": [{"Fn::FindInMap": ["M", "k", "v"]}, {"Fn::Base64": "text"}]}
    assert props["G"] == {
        "Fn::And": [{"Condition": "C1"}, {"Fn::Or": [{"Fn::Not": [{"Condition": "C2"}]}, {"Condition": "C3"}]}]
    }
    assert props["H"] == {"Fn::GetAZs": ""}
    assert props["I"] == {"Fn::Length": [1, 2]}
    assert props["J"] == {"Fn::ToJsonString": {"a": 1}}
    assert props["K"] == {"Fn::ImportValue": "other"}


def test_json_templates_load_too(tmp_path: Path) -> None:
    path = write(tmp_path, '{"Resources": {"B": {"Type": "AWS::S3::Bucket"}}}', "template.json")
    assert load_template(path) == {"Resources": {"B": {"Type": "AWS::S3::Bucket"}}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Resources:\n  B: {Type: AWS::S3::Bucket, Properties: {X: !Bogus y}}\n", r"unknown YAML tag !Bogus"),
        ("Resources:\n  B: {Type: AWS::S3::Bucket}\n  B: {Type: AWS::SQS::Queue}\n", r"duplicate key 'B'"),
        ("- a\n- b\n", r"not a CloudFormation template"),
        ("Description: no resources\n", r"not a CloudFormation template"),
        ("Resources: {}\n", r"not a CloudFormation template"),
        (
            "Resources:\n  B: {Type: AWS::S3::Bucket}\nResource: typo\n",
            r"unknown top-level section\(s\) \['Resource'\]",
        ),
        ("Resources: [unclosed\n", r"not valid YAML"),
        ("Resources:\n  B: !!python/object:os.system {}\n", r"not valid YAML"),
    ],
)
def test_non_templates_are_rejected_clearly(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        load_template(write(tmp_path, text))


def test_missing_template_is_named(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"cannot read template .*nope\.yaml"):
        load_template(tmp_path / "nope.yaml")


def test_the_repository_template_is_the_default() -> None:
    assert load_template() == load_template(TEMPLATE_PATH)


# ---------------------------------------------------------------------------------------------- samconfig
SAMCONFIG = """
version = 0.1
[default.global.parameters]
stack_name = "from-global"
[default.deploy.parameters]
parameter_overrides = 'A=1 B="two words" C=\\"quoted\\" D=x=y'

[listed.deploy.parameters]
stack_name = "listed-stack"
parameter_overrides = ["A=1", "B='single quoted' C=3"]

[cli.deploy.parameters]
parameter_overrides = "ParameterKey=A,ParameterValue=1 ParameterKey=B,ParameterValue=2"

[globalonly.global.parameters]
parameter_overrides = "A=global"

[both.global.parameters]
parameter_overrides = "A=global B=global"
stack_name = "global-name"
[both.deploy.parameters]
parameter_overrides = "B=deploy"
stack_name = "deploy-name"

[bare.build.parameters]
cached = true
"""


@pytest.fixture
def samconfig(tmp_path: Path) -> Path:
    return write(tmp_path, SAMCONFIG, "samconfig.toml")


def test_parameter_override_forms(samconfig: Path) -> None:
    assert samconfig_overrides(samconfig) == {"A": "1", "B": "two words", "C": '"quoted"', "D": "x=y"}
    assert samconfig_overrides(samconfig, "listed") == {"A": "1", "B": "single quoted", "C": "3"}
    assert samconfig_overrides(samconfig, "cli") == {"A": "1", "B": "2"}
    assert samconfig_overrides(samconfig, "globalonly") == {"A": "global"}
    assert samconfig_overrides(samconfig, "bare") == {}


def test_deploy_parameters_replace_global_ones_key_by_key(samconfig: Path) -> None:
    # SAM CLI: [env.deploy.parameters] wins over [env.global.parameters] per key, so overrides are not merged.
    assert samconfig_overrides(samconfig, "both") == {"B": "deploy"}
    assert samconfig_stack_name(samconfig, "both") == "deploy-name"
    assert samconfig_stack_name(samconfig, "default") == "from-global"
    assert samconfig_stack_name(samconfig, "cli") is None


def test_unknown_environment_lists_the_valid_ones(samconfig: Path) -> None:
    valid = "bare, both, cli, default, globalonly, listed"  # not "version": it is not an environment
    with pytest.raises(TemplateError, match=rf"environment 'prod' not found in .*; valid: {valid}$"):
        samconfig_overrides(samconfig, "prod")
    with pytest.raises(TemplateError, match=rf"valid: {valid}$"):
        samconfig_stack_name(samconfig, "prod")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("A=1 justaword", r"'justaword' .* is not Key=Value"),
        ("A=", r"'A=' .* has no value"),
        ('A="open', r"unterminated \" quote"),
        ("Bad-Key=1", r"is not Key=Value"),
    ],
)
def test_malformed_overrides_are_named(tmp_path: Path, overrides: str, message: str) -> None:
    path = write(
        tmp_path, f"version = 0.1\n[default.deploy.parameters]\nparameter_overrides = '{overrides}'\n", "s.toml"
    )
    with pytest.raises(TemplateError, match=message):
        samconfig_overrides(path)


def test_missing_or_broken_samconfig_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"cannot read samconfig"):
        samconfig_overrides(tmp_path / "absent.toml")
    with pytest.raises(TemplateError, match=r"not valid samconfig"):
        samconfig_overrides(write(tmp_path, "[default\n", "broken.toml"))


def test_yaml_samconfig(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 0.1\nprod:\n  deploy:\n    parameters:\n      stack_name: p\n"
        "      parameter_overrides:\n        EnvironmentName: prod\n        Threshold: 0.8\n",
        "samconfig.yaml",
    )
    assert read_samconfig(path)["prod"]["deploy"]["parameters"]["stack_name"] == "p"
    assert samconfig_overrides(path, "prod") == {"EnvironmentName": "prod", "Threshold": "0.8"}
    assert samconfig_stack_name(path, "prod") == "p"


def test_repository_samconfig_feeds_the_resolver() -> None:
    template = load_template()
    prod = make_resolver(template, samconfig=SAMCONFIG_PATH, env="prod")
    assert prod.stack_name == "dogbreed-prod"
    assert prod.parameters["EnvironmentName"] == "prod"
    assert prod.parameters["EndpointMinCapacity"] == "2"
    # Default < samconfig < explicit overrides; an explicit stack name wins over samconfig's.
    explicit = make_resolver(
        template, {"EndpointMinCapacity": "3"}, samconfig=SAMCONFIG_PATH, env="prod", stack_name="other"
    )
    assert (explicit.parameters["EndpointMinCapacity"], explicit.stack_name) == ("3", "other")
    assert explicit.parameters["EnvironmentName"] == "prod"
    default = make_resolver(template)
    assert (default.stack_name, default.parameters["EndpointMinCapacity"]) == ("dogbreed-dev", "1")


def test_make_resolver_reads_samconfig_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overrides and stack name come from one read (and TOML parse) of samconfig."""
    reads: list[Path | str] = []
    real = template_module.read_samconfig

    def counting(path: Path | str) -> dict[str, Any]:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(template_module, "read_samconfig", counting)
    resolver = make_resolver(load_template(), samconfig=SAMCONFIG_PATH, env="prod")
    assert (resolver.stack_name, resolver.parameters["EnvironmentName"]) == ("dogbreed-prod", "prod")
    assert reads == [SAMCONFIG_PATH]
