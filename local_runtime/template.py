"""Read template.yaml the way CloudFormation would, with local values for everything AWS would decide.

The local Step Functions takes its DefinitionSubstitutions from here and the local API its routes and environment, so
nothing is copied out of the template by hand. Intrinsics resolved: Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::If
(with Conditions: Fn::Equals/And/Or/Not, Condition), Fn::FindInMap, Fn::Select, Fn::Split, Fn::Base64 and the AWS::
pseudo parameters. Physical names and ARNs are fake but stable, in account 123456789012 and region us-east-1.
"""

from __future__ import annotations

import base64
import re
import tomllib
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
DEFAULT_STACK_NAME = "dogbreed-local"
STATE_MACHINE_ID = "TrainDeployStateMachine"
_NO_VALUE = object()

_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "Join": "Fn::Join",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Not": "Fn::Not",
    "FindInMap": "Fn::FindInMap",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "Base64": "Fn::Base64",
    "GetAZs": "Fn::GetAZs",
    "ImportValue": "Fn::ImportValue",
    "Cidr": "Fn::Cidr",
    "Transform": "Fn::Transform",
    "Length": "Fn::Length",
    "ToJsonString": "Fn::ToJsonString",
}


class TemplateError(ValueError):
    """The template uses something this resolver cannot give a local value for."""


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader turning ``!Ref x`` into ``{"Ref": "x"}`` and ``!GetAtt a.b`` into ``{"Fn::GetAtt": ["a", "b"]}``."""


def _construct(tag: str, full: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {full: value}

    return construct


for _tag, _full in _SHORT_TAGS.items():
    _CfnLoader.add_constructor(f"!{_tag}", _construct(_tag, _full))


def load_template(path: Path | str) -> dict[str, Any]:
    """Load a CloudFormation/SAM template, keeping short-form intrinsics as their long form."""
    with open(path, encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=_CfnLoader)
    if not isinstance(data, dict) or "Resources" not in data:
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources section)")
    return data


def samconfig_overrides(path: Path | str, env: str = "default") -> dict[str, str]:
    """Parameter overrides of one samconfig.toml environment (``deploy`` then ``global`` parameters)."""
    path = Path(path)
    if not path.exists():
        return {}
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    if env not in config:
        raise TemplateError(f"samconfig environment {env!r} not found in {path}; valid: {', '.join(sorted(config))}")
    result: dict[str, str] = {}
    for command in ("global", "deploy"):
        raw = config[env].get(command, {}).get("parameters", {}).get("parameter_overrides")
        if raw is None:
            continue
        items = raw if isinstance(raw, list) else re.findall(r'(?:[^\s"]|"[^"]*")+', raw)
        for item in items:
            key, sep, value = str(item).partition("=")
            if not sep:
                raise TemplateError(f"parameter_overrides entry {item!r} in {path} is not Key=Value")
            result[key.strip()] = value.strip().strip('"')
    return result


def samconfig_stack_name(path: Path | str, env: str = "default") -> str | None:
    """The ``stack_name`` of a samconfig.toml environment, if any."""
    path = Path(path)
    if not path.exists():
        return None
    env_config = tomllib.loads(path.read_text(encoding="utf-8")).get(env, {})
    for command in ("deploy", "global"):
        name = env_config.get(command, {}).get("parameters", {}).get("stack_name")
        if name:
            return str(name)
    return None


class Resolver:
    """Resolves intrinsic functions of one template against parameter values."""

    def __init__(
        self,
        template: Mapping[str, Any],
        overrides: Mapping[str, Any] | None = None,
        stack_name: str = DEFAULT_STACK_NAME,
    ) -> None:
        self.template = template
        self.stack_name = stack_name
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        declared: Mapping[str, Any] = template.get("Parameters", {}) or {}
        unknown = sorted(set(overrides or {}) - set(declared))
        if unknown:
            raise TemplateError(f"unknown template parameter(s) {unknown}; valid: {sorted(declared)}")
        self.parameters: dict[str, Any] = {}
        for name, spec in declared.items():
            value = (overrides or {}).get(name, spec.get("Default"))
            if value is None:
                raise TemplateError(f"template parameter {name} has no Default and no override")
            value = str(value) if not isinstance(value, list) else value
            allowed = spec.get("AllowedValues")
            if allowed and value not in [str(a) for a in allowed]:
                raise TemplateError(f"parameter {name}={value!r} is not allowed; valid: {allowed}")
            if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                value = [v.strip() for v in value.split(",")] if value else []
            self.parameters[name] = value
        self._conditions: dict[str, bool] = {}

    # ------------------------------------------------------------------ pseudo parameters and resources
    def _pseudo(self, name: str) -> Any:
        return {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": REGION,
            "AWS::Partition": PARTITION,
            "AWS::StackName": self.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{self.stack_name}/"
            f"{uuid.uuid5(uuid.NAMESPACE_URL, self.stack_name)}",
            "AWS::NoValue": _NO_VALUE,
        }[name]

    def _resource(self, logical_id: str) -> Mapping[str, Any]:
        if logical_id not in self.resources:
            raise TemplateError(f"unknown logical id {logical_id!r}")
        return self.resources[logical_id]

    def physical_name(self, logical_id: str) -> str:
        """The name CloudFormation would give (the resource's own name property when it sets one)."""
        resource = self._resource(logical_id)
        props = resource.get("Properties", {}) or {}
        for key in (
            "BucketName",
            "RoleName",
            "FunctionName",
            "StateMachineName",
            "AlarmName",
            "LogGroupName",
            "Name",
            "TableName",
            "TopicName",
            "QueueName",
        ):
            if key in props:
                value = self.resolve(props[key])
                if value is not _NO_VALUE:
                    return str(value)
        return f"{self.stack_name}-{logical_id}".lower()[:63]

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self._pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        resource = self._resource(name)
        rtype = resource.get("Type", "")
        if rtype in ("AWS::KMS::Key",):
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.stack_name}/{name}"))
        if rtype in ("AWS::StepFunctions::StateMachine", "AWS::Serverless::StateMachine"):
            return self.get_att(name, "Arn")
        if rtype in ("AWS::Serverless::Api", "AWS::ApiGateway::RestApi"):
            return uuid.uuid5(uuid.NAMESPACE_URL, f"{self.stack_name}/{name}").hex[:10]
        return self.physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self._resource(logical_id)
        rtype = resource.get("Type", "")
        name = self.physical_name(logical_id)
        if attribute == "Arn":
            arns = {
                "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT_ID}:role/{name}",
                "AWS::IAM::ManagedPolicy": f"arn:aws:iam::{ACCOUNT_ID}:policy/{name}",
                "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
                "AWS::KMS::Key": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/{self.ref(logical_id)}",
                "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*",
                "AWS::CloudWatch::Alarm": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:{name}",
                "AWS::Serverless::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}",
                "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}",
                "AWS::Serverless::StateMachine": f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}",
                "AWS::StepFunctions::StateMachine": f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}",
                "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}",
                "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}",
            }
            if rtype in arns:
                return arns[rtype]
        if attribute in ("Name", "BucketName") or (rtype == "AWS::StepFunctions::StateMachine" and attribute == "Name"):
            return name
        if attribute == "KeyId":
            return self.ref(logical_id)
        if attribute == "RoleId":
            return f"AROA{uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:17].upper()}"
        if attribute == "DomainName":
            return f"{name}.s3.amazonaws.com"
        if attribute == "RegionalDomainName":
            return f"{name}.s3.{REGION}.amazonaws.com"
        raise TemplateError(f"no local value for !GetAtt {logical_id}.{attribute} ({rtype})")

    # ------------------------------------------------------------------ conditions
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions", {}) or {}
            if name not in conditions:
                raise TemplateError(f"unknown condition {name!r}; valid: {sorted(conditions)}")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    # ------------------------------------------------------------------ intrinsics
    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic in ``value``; keys resolving to AWS::NoValue are dropped."""
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key, arg)
        out = {}
        for key, item in value.items():
            resolved = self.resolve(item)
            if resolved is not _NO_VALUE:
                out[key] = resolved
        return out

    def _function(self, key: str, arg: Any) -> Any:
        if key == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self.get_att(self.resolve(logical_id), self.resolve(attribute))
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
            return self._sub(text, variables)
        if key == "Fn::Join":
            sep, items = arg
            return str(self.resolve(sep)).join(str(v) for v in self.resolve(items))
        if key == "Fn::If":
            name, when_true, when_false = arg
            return self.resolve(when_true if self.condition(name) else when_false)
        if key == "Fn::Equals":
            left, right = (self.resolve(a) for a in arg)
            return str(left) == str(right)
        if key == "Fn::And":
            return all(self.resolve(a) for a in arg)
        if key == "Fn::Or":
            return any(self.resolve(a) for a in arg)
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Fn::FindInMap":
            mapping, top, second = (self.resolve(a) for a in arg[:3])
            try:
                return self.template["Mappings"][mapping][top][second]
            except KeyError as exc:
                raise TemplateError(f"Fn::FindInMap {mapping}/{top}/{second} has no entry") from exc
        if key == "Fn::Select":
            index, items = self.resolve(arg[0]), self.resolve(arg[1])
            return items[int(index)]
        if key == "Fn::Split":
            sep, text = self.resolve(arg[0]), self.resolve(arg[1])
            return str(text).split(sep)
        if key == "Fn::Base64":
            return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        if key == "Fn::GetAZs":
            return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
        if key == "Fn::Length":
            return len(self.resolve(arg))
        raise TemplateError(f"{key} has no local value")

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(variables[expr])
            if "." in expr and not expr.startswith("AWS::"):
                logical_id, attribute = expr.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(expr))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def make_resolver(
    template: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    *,
    samconfig: Path | str | None = None,
    env: str = "default",
) -> Resolver:
    """A resolver whose parameters are: Default < samconfig env's parameter_overrides < ``overrides``."""
    params: dict[str, Any] = {}
    stack_name = DEFAULT_STACK_NAME
    if samconfig is not None:
        params.update(samconfig_overrides(samconfig, env))
        stack_name = samconfig_stack_name(samconfig, env) or stack_name
    params.update(overrides or {})
    return Resolver(template, params, stack_name=stack_name)


def definition_substitutions(
    template: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    *,
    samconfig: Path | str | None = None,
    env: str = "default",
    logical_id: str = STATE_MACHINE_ID,
) -> dict[str, str]:
    """The state machine's DefinitionSubstitutions, resolved to strings as CloudFormation passes them."""
    resolver = make_resolver(template, overrides, samconfig=samconfig, env=env)
    props = resolver._resource(logical_id).get("Properties", {}) or {}
    subs = resolver.resolve(props.get("DefinitionSubstitutions", {}))
    return {key: _as_string(value) for key, value in subs.items()}


def function_environment(
    template: Mapping[str, Any],
    logical_id: str = "InferenceFunction",
    overrides: Mapping[str, Any] | None = None,
    *,
    samconfig: Path | str | None = None,
    env: str = "default",
) -> dict[str, str]:
    """A SAM function's environment variables: Globals.Function merged with the function's own."""
    resolver = make_resolver(template, overrides, samconfig=samconfig, env=env)
    globals_env = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get(
        "Variables", {}
    )
    props = resolver._resource(logical_id).get("Properties", {}) or {}
    own_env = (props.get("Environment") or {}).get("Variables", {})
    merged = {**resolver.resolve(globals_env), **resolver.resolve(own_env)}
    return {key: _as_string(value) for key, value in merged.items()}


def function_property(
    template: Mapping[str, Any], logical_id: str, name: str, overrides: Mapping[str, Any] | None = None, **kwargs: Any
) -> Any:
    """One resolved property of a SAM function, falling back to Globals.Function (e.g. Timeout, Handler)."""
    resolver = make_resolver(template, overrides, **kwargs)
    props = resolver._resource(logical_id).get("Properties", {}) or {}
    if name in props:
        return resolver.resolve(props[name])
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    return resolver.resolve(globals_fn[name]) if name in globals_fn else None


def api_events(template: Mapping[str, Any], logical_id: str = "InferenceFunction") -> list[tuple[str, str]]:
    """The (path, METHOD) pairs of a function's API Gateway (REST ``Api``) events."""
    props = (template.get("Resources", {}).get(logical_id) or {}).get("Properties", {}) or {}
    routes = []
    for event in (props.get("Events") or {}).values():
        if event.get("Type") == "Api":
            event_props = event.get("Properties", {})
            routes.append((str(event_props["Path"]), str(event_props["Method"]).upper()))
    return sorted(routes)


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)
