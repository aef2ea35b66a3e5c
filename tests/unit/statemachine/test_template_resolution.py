"""local_aws.cloudformation resolves template.yaml the way CloudFormation would, with local values."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from local_aws.cloudformation import (
    TemplateError,
    api_events,
    definition_substitutions,
    function_environment,
    load_template,
    samconfig_overrides,
)
from local_aws.constants import REPO_ROOT as ROOT
from local_aws.deploy import DeployError, substitute

MINI = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  EnvironmentName: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Threshold: {Type: Number, Default: 0.7}
  UseSpot: {Type: String, Default: "false"}
Conditions:
  IsProd: !Equals [!Ref EnvironmentName, prod]
Mappings:
  Sizes: {dev: {Type: ml.m5.large}, prod: {Type: ml.c5.xlarge}}
Globals:
  Function:
    Environment:
      Variables: {POWERTOOLS_SERVICE_NAME: dogbreed}
Resources:
  Key: {Type: AWS::KMS::Key}
  Role: {Type: AWS::IAM::Role, Properties: {RoleName: !Sub "dogbreed-${EnvironmentName}-sm"}}
  Bucket: {Type: AWS::S3::Bucket, Properties: {BucketName: !Sub "dogbreed-${EnvironmentName}-${AWS::AccountId}"}}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          ENDPOINT_NAME: !Join ["-", [dogbreed, !Ref EnvironmentName]]
          EXTRA: !If [IsProd, only-in-prod, !Ref AWS::NoValue]
      Events:
        Predict: {Type: Api, Properties: {Path: /predict, Method: post}}
        Health: {Type: Api, Properties: {Path: /health, Method: get}}
  TrainDeployStateMachine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionSubstitutions:
        RoleArn: !GetAtt Role.Arn
        KeyArn: !GetAtt Key.Arn
        Bucket: !Ref Bucket
        Type: !FindInMap [Sizes, !Ref EnvironmentName, Type]
        First: !Select [0, !Split [",", "a,b"]]
        Threshold: !Ref Threshold
        Spot: !Ref UseSpot
        Region: !Sub "${AWS::Region}/${AWS::Partition}"
"""


@pytest.fixture
def mini(tmp_path: Path) -> dict:
    path = tmp_path / "template.yaml"
    path.write_text(MINI)
    return load_template(path)


def test_intrinsics_resolve_to_local_values(mini: dict) -> None:
    subs = definition_substitutions(mini)
    assert subs == {
        "RoleArn": "arn:aws:iam::123456789012:role/dogbreed-dev-sm",
        "KeyArn": subs["KeyArn"],
        "Bucket": "dogbreed-dev-123456789012",
        "Type": "ml.m5.large",
        "First": "a",
        "Threshold": "0.7",
        "Spot": "false",
        "Region": "us-east-1/aws",
    }
    assert re.fullmatch(r"arn:aws:kms:us-east-1:123456789012:key/[0-9a-f-]{36}", subs["KeyArn"])


def test_overrides_and_conditions(mini: dict, tmp_path: Path) -> None:
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(
        'version = 0.1\n[prod.deploy.parameters]\nstack_name = "dogbreed-prod"\n'
        'parameter_overrides = "EnvironmentName=prod Threshold=0.8"\n'
    )
    assert samconfig_overrides(samconfig, "prod") == {"EnvironmentName": "prod", "Threshold": "0.8"}
    subs = definition_substitutions(mini, {"Threshold": "0.9"}, samconfig=samconfig, env="prod")
    assert (subs["Type"], subs["Threshold"], subs["Bucket"]) == ("ml.c5.xlarge", "0.9", "dogbreed-prod-123456789012")
    assert function_environment(mini, "Fn") == {"POWERTOOLS_SERVICE_NAME": "dogbreed", "ENDPOINT_NAME": "dogbreed-dev"}
    assert function_environment(mini, "Fn", {"EnvironmentName": "prod"})["EXTRA"] == "only-in-prod"


def test_bad_overrides_are_named(mini: dict, tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"unknown template parameter.*Nope.*valid"):
        definition_substitutions(mini, {"Nope": "1"})
    with pytest.raises(TemplateError, match=r"EnvironmentName='qa' is not allowed; valid: \['dev', 'prod'\]"):
        definition_substitutions(mini, {"EnvironmentName": "qa"})
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text("version = 0.1\n[dev.deploy.parameters]\n")
    with pytest.raises(TemplateError, match=r"environment 'stage' not found.*valid: dev"):
        samconfig_overrides(samconfig, "stage")


def test_api_events(mini: dict) -> None:
    assert api_events(mini, "Fn") == [("/health", "GET"), ("/predict", "POST")]


def test_substitute_replaces_every_placeholder_and_names_missing_ones() -> None:
    text = '{"A": "${One}", "B.$": "States.Format(\'${Two}-{}\', $$.Execution.Name)"}'
    assert json.loads(substitute(text, {"One": "1", "Two": "x"})) == {
        "A": "1",
        "B.$": "States.Format('x-{}', $$.Execution.Name)",
    }
    with pytest.raises(DeployError, match=r"\['Two'\]"):
        substitute(text, {"One": "1"})


@pytest.mark.skipif(not (ROOT / "template.yaml").exists(), reason="template.yaml not written yet")
def test_real_template_gives_every_placeholder_a_value() -> None:
    template = load_template(ROOT / "template.yaml")
    subs = definition_substitutions(template, samconfig=ROOT / "samconfig.toml", env="default")
    definition = json.loads(substitute((ROOT / "statemachine" / "train_and_deploy.asl.json").read_text(), subs))
    assert definition["StartAt"] == "ValidateInput"
    for key in (
        "DefaultTrainingInstanceCount",
        "DefaultMinCapacity",
        "DefaultMaxCapacity",
        "DefaultTargetInvocations",
        "DefaultAccuracyThreshold",
        "DefaultUseSpot",
    ):
        json.loads(subs[key])  # the ASL feeds these to States.StringToJson
    assert subs["EndpointName"] == subs["ResourcePrefix"]
    assert ("/predict", "POST") in api_events(template, "InferenceFunction")
