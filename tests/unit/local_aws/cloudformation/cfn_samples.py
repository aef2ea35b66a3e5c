"""Sample templates for the local_aws.cloudformation tests, loaded through the one loader."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from local_aws.cloudformation import load_template

# Parameters of each kind, conditions built from each condition function, and one resource per modelled Ref/GetAtt
# shape. The Resources section comes last, so a test can append resources (indented two spaces) or new sections.
BASE = """
Parameters:
  Env: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Count: {Type: Number, Default: 2, MinValue: 1, MaxValue: 5}
  Zones: {Type: CommaDelimitedList, Default: "a, b ,c"}
  Ports: {Type: List<Number>, Default: "80,443"}
  Name: {Type: String, Default: svc, AllowedPattern: "[a-z]+", MinLength: 2, MaxLength: 8}
  Flag: {Type: String, Default: true}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  NotProd: !Not [!Condition IsProd]
  ProdAndTwo: !And [!Condition IsProd, !Equals [!Ref Count, 2]]
  ProdOrTwo: !Or [!Condition IsProd, !Equals [2, !Ref Count]]
Mappings:
  Sizes: {dev: {Type: small}, prod: {Type: large}}
Resources:
  Bucket: {Type: AWS::S3::Bucket, Properties: {BucketName: !Sub "b-${Env}-${AWS::AccountId}"}}
  Generated: {Type: AWS::S3::Bucket}
  Role: {Type: AWS::IAM::Role, Properties: {Path: /svc/}}
  Key: {Type: AWS::KMS::Key}
  Machine: {Type: AWS::Serverless::StateMachine, Properties: {Name: !Sub "${Env}-sm"}}
  Topic: {Type: AWS::SNS::Topic}
  Queue: {Type: AWS::SQS::Queue, Properties: {QueueName: q}}
  Api: {Type: AWS::Serverless::Api, Properties: {StageName: v1}}
  Fn: {Type: AWS::Serverless::Function, Properties: {FunctionName: f, AutoPublishAlias: live}}
  ProdOnly: {Type: AWS::SNS::Topic, Condition: IsProd}
  Odd: {Type: AWS::EC2::VPC}
"""


def template(extra: str = "", base: str = BASE) -> dict[str, Any]:
    """``base`` + ``extra`` (more resources, or further top-level sections) through the one loader."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "template.yaml"
        path.write_text(base + extra)
        return load_template(path)
