"""Helpers for the offline template tests: a CloudFormation-aware YAML loader and a small intrinsic evaluator.

The evaluator resolves what these tests need to compare concrete strings (ARNs, names, conditions) for a given set
of parameter values: Ref, Fn::Sub, Fn::GetAtt (fake ARNs), Fn::If / Fn::Equals / Fn::Not / Fn::And / Fn::Or,
Fn::Join, Fn::Select and AWS::NoValue. Anything else raises, so a template change the tests don't understand fails
loudly instead of passing silently.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
SAMCONFIG_PATH = REPO_ROOT / "samconfig.toml"
CONTRACTS_PATH = REPO_ROOT / "docs" / "CONTRACTS.md"

ACCOUNT = "123456789012"
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "dogbreed-dev",
    "AWS::StackId": f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/dogbreed-dev/guid",
}
NO_VALUE = object()


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns !Ref/!GetAtt/!Sub/... into their JSON (long-form) equivalents."""


def _construct_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if tag_suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Parse a SAM/CloudFormation template with short-form intrinsics."""
    with path.open() as fh:
        return yaml.load(fh, Loader=CfnLoader)


class Evaluator:
    """Resolves intrinsic functions of one template for one set of parameter values and one region."""

    def __init__(
        self, template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None, region: str = "us-east-1"
    ):
        self.template = template
        self.region = region
        self.params: dict[str, str] = {}
        for name, spec in template.get("Parameters", {}).items():
            if "Default" in spec:
                self.params[name] = str(spec["Default"])
        for name, value in (overrides or {}).items():
            if name not in template.get("Parameters", {}):
                raise KeyError(f"override for unknown parameter {name!r}")
            self.params[name] = str(value)

    # ------------------------------------------------------------------ conditions
    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resource_exists(self, logical_id: str) -> bool:
        cond = self.template["Resources"][logical_id].get("Condition")
        return cond is None or self.condition(cond)

    # ------------------------------------------------------------------ references
    def ref(self, name: str) -> Any:
        if name == "AWS::Region":
            return self.region
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            return self.params[name]
        if "." in name:
            # SAM's generated-resource refs (e.g. InferenceApi.Stage) exist only after the transform.
            return f"ref-{name}"
        resources = self.template["Resources"]
        if name not in resources:
            raise KeyError(f"Ref to unknown name {name!r}")
        res = resources[name]
        props = res.get("Properties", {})
        # Refs whose value these tests compare: physical names set in the template.
        for key in ("BucketName", "AlarmName", "LogGroupName", "FunctionName", "Name"):
            if key in props:
                value = self.resolve(props[key])
                if res["Type"] == "AWS::Serverless::StateMachine":
                    return f"arn:aws:states:{self.region}:{ACCOUNT}:stateMachine:{value}"
                return value
        return f"ref-{name}"

    def getatt(self, logical_id: str, attr: str) -> str:
        res = self.template["Resources"][logical_id]
        rtype = res["Type"]
        props = res.get("Properties", {})
        if attr != "Arn":
            return f"getatt-{logical_id}-{attr}"
        if rtype == "AWS::IAM::Role":
            return f"arn:aws:iam::{ACCOUNT}:role/{logical_id}"
        if rtype == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{self.resolve(props['BucketName'])}"
        if rtype == "AWS::KMS::Key":
            return f"arn:aws:kms:{self.region}:{ACCOUNT}:key/{logical_id}"
        if rtype == "AWS::Logs::LogGroup":
            return f"arn:aws:logs:{self.region}:{ACCOUNT}:log-group:{self.resolve(props['LogGroupName'])}:*"
        return f"arn:aws:{rtype}:{self.region}:{ACCOUNT}:{logical_id}"

    # ------------------------------------------------------------------ evaluation
    def sub(self, value: Any) -> str:
        if isinstance(value, list):
            text, local = value[0], {k: self.resolve(v) for k, v in value[1].items()}
        else:
            text, local = value, {}

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in local:
                return str(local[token])
            if "." in token and not token.startswith("AWS::"):
                logical_id, attr = token.split(".", 1)
                return self.getatt(logical_id, attr)
            return str(self.ref(token))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, node: Any) -> Any:
        """Recursively resolve intrinsics; AWS::NoValue drops the key or list item."""
        if isinstance(node, list):
            return [v for v in (self.resolve(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self.ref(value)
            if key == "Fn::Sub":
                return self.sub(value)
            if key == "Fn::GetAtt":
                return self.getatt(value[0], value[1])
            if key == "Fn::If":
                return self.resolve(value[1] if self.condition(value[0]) else value[2])
            if key == "Fn::Equals":
                return str(self.resolve(value[0])) == str(self.resolve(value[1]))
            if key == "Fn::Not":
                return not self.resolve(value[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in value)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in value)
            if key == "Condition":
                return self.condition(value)
            if key == "Fn::Join":
                return value[0].join(str(v) for v in self.resolve(value[1]))
            if key == "Fn::Select":
                return self.resolve(value[1])[int(self.resolve(value[0]))]
            if key.startswith("Fn::"):
                raise NotImplementedError(f"{key} is not understood by the test evaluator")
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in node.items()) if v is not NO_VALUE}


def parameter_overrides(env: str) -> dict[str, str]:
    """The parameter_overrides of one samconfig.toml environment as a dict."""
    config = tomllib.loads(SAMCONFIG_PATH.read_text())
    raw = config[env]["deploy"]["parameters"].get("parameter_overrides", "")
    if isinstance(raw, list):
        raw = " ".join(raw)
    return dict(re.findall(r'(\w+)="([^"]*)"', raw))


def statements(policy_document: Mapping[str, Any]) -> list[dict[str, Any]]:
    stmts = policy_document["Statement"]
    return [stmts] if isinstance(stmts, dict) else list(stmts)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(evaluated_template: Mapping[str, Any], role_id: str) -> list[dict[str, Any]]:
    """Every Allow/Deny statement of a role's inline policies (already evaluated)."""
    role = evaluated_template["Resources"][role_id]
    out: list[dict[str, Any]] = []
    for policy in role["Properties"].get("Policies", []):
        for stmt in statements(policy["PolicyDocument"]):
            out.append({**stmt, "_policy": policy["PolicyName"]})
    return out


# Checkov ids that may be skipped, and on which resources (security checklist §1.4 and §6 item 2).
CHECKOV_SKIP_ALLOWLIST: dict[str, set[str]] = {
    "CKV_AWS_18": {"AccessLogBucket"},
    "CKV_AWS_116": {"InferenceFunction"},
    "CKV_AWS_117": {"InferenceFunction"},
    "CKV_AWS_173": {"InferenceFunction"},
    "CKV_AWS_120": {"InferenceApi"},
    "CKV_AWS_111": {"StateMachineRole"},
    "CKV_AWS_158": {"InferenceFunctionLogGroup", "StateMachineLogGroup", "ApiAccessLogGroup"},
}
