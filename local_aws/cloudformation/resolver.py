"""Resolve a template's intrinsic functions the way CloudFormation does at create time, with local values.

Semantics follow the CloudFormation User Guide / Template Reference (docs.aws.amazon.com/AWSCloudFormation/latest/):
``Ref`` (TemplateReference/intrinsic-function-reference-ref.html), pseudo parameters
(TemplateReference/pseudo-parameter-reference.html), ``Fn::Sub`` (…-sub.html), conditions
(UserGuide/conditions-section-structure.html) and the other functions on their own pages. What CloudFormation would
reject, or what only AWS could answer (imports, SSM, macros), raises ``TemplateError`` naming the construct: nothing
is passed through unresolved.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from local_aws.cloudformation.parameters import ParameterValue, parameter_values, scalar_text
from local_aws.cloudformation.resources import Identity, ResourceFields
from local_aws.cloudformation.template import TemplateError
from local_aws.constants import ACCOUNT_ID, DEFAULT_STACK_NAME, PARTITION, REGION, URL_SUFFIX


class _NoValue:
    """The type of ``NO_VALUE``."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


# What ``Ref AWS::NoValue`` resolves to: the enclosing mapping key or list item is removed.
NO_VALUE: Any = _NoValue()

_SERVERLESS = "AWS::Serverless-2016-10-31"
_LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
_CONDITION_FUNCTIONS = frozenset({"Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not", "Condition"})
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
# Stack names: a letter, then letters, digits and hyphens, 128 at most (CreateStack API).
_STACK_NAME = re.compile(r"[A-Za-z][-A-Za-z0-9]{0,127}")
_UNSUPPORTED = {
    "Fn::ImportValue": "reads another stack's exports, which do not exist locally",
    "Fn::Cidr": "is not modelled locally",
    "Fn::Transform": "runs a macro, which cannot run locally",
    **{
        f"Fn::{name}": "is a rule function, valid only in the Rules section"
        for name in ("Contains", "EachMemberEquals", "EachMemberIn", "RefAll", "ValueOf", "ValueOfAll")
    },
}
_FUNCTIONS = {
    "Fn::GetAtt": "_fn_get_att",
    "Fn::Sub": "_fn_sub",
    "Fn::Join": "_fn_join",
    "Fn::If": "_fn_if",
    "Fn::Equals": "_fn_equals",
    "Fn::And": "_fn_and",
    "Fn::Or": "_fn_or",
    "Fn::Not": "_fn_not",
    "Fn::FindInMap": "_fn_find_in_map",
    "Fn::Select": "_fn_select",
    "Fn::Split": "_fn_split",
    "Fn::Base64": "_fn_base64",
    "Fn::GetAZs": "_fn_get_azs",
    "Fn::Length": "_fn_length",
    "Fn::ToJsonString": "_fn_to_json_string",
}


def partition_of(region: str) -> tuple[str, str]:
    """``AWS::Partition`` and ``AWS::URLSuffix`` of a region (pseudo-parameter-reference.html)."""
    if region.startswith("cn-"):
        return "aws-cn", "amazonaws.com.cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov", URL_SUFFIX
    return PARTITION, URL_SUFFIX


def stack_id(stack_name: str, region: str = REGION, account_id: str = ACCOUNT_ID) -> str:
    """``AWS::StackId``, which is also the StackId DescribeStacks reports: an ARN, stable per account/region/name."""
    partition, _ = partition_of(region)
    suffix = uuid.uuid5(uuid.NAMESPACE_URL, f"{account_id}/{region}/{stack_name}")
    return f"arn:{partition}:cloudformation:{region}:{account_id}:stack/{stack_name}/{suffix}"


def _args(key: str, arg: Any, count: int) -> list[Any]:
    if not isinstance(arg, list) or len(arg) != count:
        raise TemplateError(f"{key} takes a list of {count} items, got {arg!r}")
    return arg


def _string(value: Any, where: str) -> str:
    if value is NO_VALUE or isinstance(value, list | Mapping) or value is None:
        raise TemplateError(f"{where} must resolve to a string, got {value!r}")
    return scalar_text(value)


def _canonical(value: Any, where: str) -> Any:
    return [_canonical(v, where) for v in value] if isinstance(value, list) else _string(value, where)


class Resolver:
    """Resolves the intrinsic functions of one template for one set of parameter values, in one account/region.

    Args:
        template: the loaded template (see ``load_template``).
        overrides: parameter values instead of the defaults.
        stack_name: ``AWS::StackName``, also the prefix of generated physical names.
        region: ``AWS::Region``; ``AWS::Partition`` and ``AWS::URLSuffix`` follow from it.
        account_id: ``AWS::AccountId``.

    Raises:
        TemplateError: not a template, an unsupported Transform, a Rules section (not evaluated locally), a bad
            identity, or parameter values CloudFormation would reject.
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        overrides: Mapping[str, Any] | None = None,
        *,
        stack_name: str = DEFAULT_STACK_NAME,
        region: str = REGION,
        account_id: str = ACCOUNT_ID,
    ) -> None:
        if not isinstance(template, Mapping) or not isinstance(template.get("Resources"), Mapping):
            raise TemplateError("not a CloudFormation template (no Resources section)")
        raw = template.get("Transform") or []
        self.transforms: frozenset[str] = frozenset([raw] if isinstance(raw, str) else raw)
        unknown = sorted(self.transforms - {_SERVERLESS, _LANGUAGE_EXTENSIONS})
        if unknown:
            raise TemplateError(
                f"Transform {unknown} cannot run locally; supported: {_SERVERLESS}, {_LANGUAGE_EXTENSIONS}"
            )
        if template.get("Rules"):
            # Rules can fail a create; skipping them would accept parameter values CloudFormation refuses.
            raise TemplateError("the Rules section is not evaluated locally")
        if not re.fullmatch(r"\d{12}", account_id) or not _REGION.fullmatch(region):
            raise TemplateError(f"account id {account_id!r} / region {region!r} are not an AWS account id / region")
        if not _STACK_NAME.fullmatch(stack_name):
            raise TemplateError(f"stack name {stack_name!r} must start with a letter: letters, digits, hyphens, <=128")
        self.template = template
        self.resources: Mapping[str, Any] = template["Resources"]
        partition, url_suffix = partition_of(region)
        self.identity = Identity(stack_name, region, account_id, partition, url_suffix)
        self.parameters: dict[str, ParameterValue] = parameter_values(template.get("Parameters") or {}, overrides)
        self._conditions: dict[str, bool] = {}
        self._evaluating: set[str] = set()

    @property
    def stack_name(self) -> str:
        """``AWS::StackName``."""
        return self.identity.stack_name

    # ------------------------------------------------------------------------------------------- names and values
    def pseudo(self, name: str) -> Any:
        """The value of an ``AWS::`` pseudo parameter."""
        ident = self.identity
        values: dict[str, Any] = {
            "AWS::AccountId": ident.account_id,
            "AWS::Region": ident.region,
            "AWS::Partition": ident.partition,
            "AWS::URLSuffix": ident.url_suffix,
            "AWS::StackName": ident.stack_name,
            "AWS::StackId": stack_id(ident.stack_name, ident.region, ident.account_id),
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        if name not in values:
            raise TemplateError(f"unknown pseudo parameter {name}; valid: {sorted(values)}")
        return values[name]

    def resource(self, logical_id: str) -> Mapping[str, Any]:
        """The template's declaration of one resource."""
        if logical_id not in self.resources:
            raise TemplateError(f"unknown logical id {logical_id!r}")
        resource = self.resources[logical_id]
        if not isinstance(resource, Mapping):
            raise TemplateError(f"resource {logical_id} is not a mapping")
        return resource

    def resource_exists(self, logical_id: str) -> bool:
        """Whether CloudFormation creates the resource: it has no Condition, or its Condition is true."""
        name = self.resource(logical_id).get("Condition")
        return name is None or self.condition(str(name))

    def created_resource(self, logical_id: str) -> Mapping[str, Any]:
        """The declaration of a resource CloudFormation creates.

        Raises:
            TemplateError: unknown logical id, or its Condition is false.
        """
        resource = self.resource(logical_id)
        if not self.resource_exists(logical_id):
            # A resource whose condition is false is not created (TemplateReference/aws-attribute-condition.html),
            # so it has no name, ARN or properties to read; a reference must sit in an Fn::If branch not taken.
            raise TemplateError(f"{logical_id} is not created (Condition {resource['Condition']} is false)")
        return resource

    def _fields(self, logical_id: str) -> ResourceFields:
        return ResourceFields(self.identity, logical_id, self.created_resource(logical_id), self._resolve_or_none)

    def _resolve_or_none(self, value: Any) -> Any:
        resolved = self.resolve(value)
        return None if resolved is NO_VALUE else resolved

    def physical_name(self, logical_id: str) -> str:
        """The resource's name: its name property if set, else the name CloudFormation would generate."""
        return self._fields(logical_id)["name"]

    def ref(self, name: str) -> Any:
        """``Ref``: a pseudo parameter, a parameter value, or what the resource type's Ref returns."""
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            value = self.parameters[name]
            return list(value) if isinstance(value, list) else value
        if name not in self.resources and "." in name:
            return self._generated_ref(*name.split(".", 1))
        fields = self._fields(name)
        return fields.kind.ref.format_map(fields)

    def _generated_ref(self, logical_id: str, what: str) -> str:
        # SAM lets a template reference resources the transform generates as <LogicalId>.<Property>
        # (serverless-application-model/latest/developerguide/sam-specification-generated-resources.html).
        resource = self.resource(logical_id)
        rtype, props = resource.get("Type"), resource.get("Properties") or {}
        if rtype == "AWS::Serverless::Api" and what == "Stage":
            return _string(self.resolve(props.get("StageName")), f"{logical_id}.StageName")  # Ref of a Stage
        if rtype == "AWS::Serverless::Api" and what == "Deployment":
            return self._fields(logical_id)["id2"]
        if rtype == "AWS::Serverless::Function" and what in ("Alias", "Version"):
            alias = props.get("AutoPublishAlias")
            if alias is None:
                raise TemplateError(f"Ref {logical_id}.{what}: SAM generates it only with AutoPublishAlias")
            qualifier = _string(self.resolve(alias), f"{logical_id}.AutoPublishAlias") if what == "Alias" else "1"
            return f"{self.get_att(logical_id, 'Arn')}:{qualifier}"
        raise TemplateError(f"Ref {logical_id}.{what}: not a parameter, resource or SAM-generated resource")

    def get_att(self, logical_id: str, attribute: str) -> str:
        """``Fn::GetAtt``: one documented return value of the resource type, fake but stable."""
        fields = self._fields(logical_id)
        pattern = fields.kind.attributes.get(attribute)
        if pattern is None:
            rtype = self.resource(logical_id).get("Type")
            raise TemplateError(
                f"no local value for Fn::GetAtt {logical_id}.{attribute} ({rtype}); "
                f"known: {sorted(fields.kind.attributes)}"
            )
        return pattern.format_map(fields)

    # ------------------------------------------------------------------------------------------- conditions
    def condition(self, name: str) -> bool:
        """The value of a condition of the Conditions section."""
        if name in self._conditions:
            return self._conditions[name]
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"unknown condition {name!r}; valid: {sorted(conditions)}")
        if name in self._evaluating:
            raise TemplateError(f"condition {name} refers to itself")
        self._evaluating.add(name)
        try:
            self._conditions[name] = self._condition_value(conditions[name], f"condition {name}")
        finally:
            self._evaluating.discard(name)
        return self._conditions[name]

    def _condition_value(self, expression: Any, where: str) -> bool:
        # Only condition functions may define a condition (conditions-section-structure.html).
        if not (isinstance(expression, Mapping) and len(expression) == 1 and set(expression) <= _CONDITION_FUNCTIONS):
            raise TemplateError(f"{where} must be Fn::Equals/And/Or/Not or Condition, got {expression!r}")
        value = self.resolve(expression)
        if not isinstance(value, bool):
            raise TemplateError(f"{where} did not evaluate to a boolean: {value!r}")
        return value

    # ------------------------------------------------------------------------------------------- resolution
    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic in ``value``; mapping keys and list items that resolve to AWS::NoValue are dropped.

        Returns:
            The resolved value; ``NO_VALUE`` if ``value`` itself is ``{"Ref": "AWS::NoValue"}``.

        Raises:
            TemplateError: an unknown or malformed intrinsic, an unknown name, or a value only AWS could give.
        """
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                name = arg if isinstance(arg, str) else self.resolve(arg)
                return self.ref(_string(name, "Ref"))
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if isinstance(key, str) and key.startswith("Fn::"):
                return self._function(key, arg)
        elif any(key == "Ref" or str(key).startswith("Fn::") for key in value):
            raise TemplateError(f"an intrinsic function must be the only key of its mapping: {sorted(value)}")
        resolved = ((key, self.resolve(item)) for key, item in value.items())
        return {key: item for key, item in resolved if item is not NO_VALUE}

    def resolve_resources(self) -> dict[str, Any]:
        """Every resource CloudFormation creates (Condition true or absent), resolved; the others are left out."""
        return {lid: self.resolve(res) for lid, res in self.resources.items() if self.resource_exists(lid)}

    def _function(self, key: str, arg: Any) -> Any:
        method = _FUNCTIONS.get(key)
        if method is None:
            raise TemplateError(f"{key} {_UNSUPPORTED.get(key, 'is not an intrinsic function this resolver knows')}")
        return getattr(self, method)(arg)

    def _needs_language_extensions(self, key: str) -> None:
        # Fn::Length, Fn::ToJsonString and FindInMap defaults exist only under the AWS::LanguageExtensions
        # transform (TemplateReference/transform-aws-languageextensions.html).
        if _LANGUAGE_EXTENSIONS not in self.transforms:
            raise TemplateError(f"{key} needs 'Transform: {_LANGUAGE_EXTENSIONS}' in the template")

    def _fn_get_att(self, arg: Any) -> str:
        parts = arg.split(".", 1) if isinstance(arg, str) else arg
        logical_id, attribute = _args("Fn::GetAtt", parts, 2)
        if not isinstance(logical_id, str):
            raise TemplateError(f"Fn::GetAtt takes a literal logical id, got {logical_id!r}")
        return self.get_att(logical_id, _string(self.resolve(attribute), "Fn::GetAtt attribute"))

    def _fn_sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        else:
            text, raw = _args("Fn::Sub", arg, 2)
            if not isinstance(text, str) or not isinstance(raw, Mapping):
                raise TemplateError(f"Fn::Sub takes [string, {{variables}}], got {arg!r}")
            variables = {name: self.resolve(v) for name, v in raw.items()}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):  # ${!Literal} is the literal text ${Literal}
                return "${" + expression[1:] + "}"
            if expression in variables:
                value = variables[expression]
            elif "." in expression and not expression.startswith("AWS::"):
                value = self.get_att(*expression.split(".", 1))
            else:
                value = self.ref(expression)
            return _string(value, f"Fn::Sub ${{{expression}}}")

        return _SUB_VARIABLE.sub(replace, text)

    def _fn_join(self, arg: Any) -> str:
        separator, items = _args("Fn::Join", arg, 2)
        values = self.resolve(items)
        if not isinstance(values, list):
            raise TemplateError(f"Fn::Join takes a list of values, got {values!r}")
        return _string(self.resolve(separator), "Fn::Join separator").join(_string(v, "Fn::Join item") for v in values)

    def _fn_if(self, arg: Any) -> Any:
        name, when_true, when_false = _args("Fn::If", arg, 3)
        return self.resolve(when_true if self.condition(_string(name, "Fn::If condition")) else when_false)

    def _fn_equals(self, arg: Any) -> bool:
        left, right = (_canonical(self.resolve(a), "Fn::Equals value") for a in _args("Fn::Equals", arg, 2))
        return bool(left == right)

    def _conditions_of(self, key: str, arg: Any) -> list[Any]:
        if not isinstance(arg, list) or not 2 <= len(arg) <= 10:
            raise TemplateError(f"{key} takes 2 to 10 conditions, got {arg!r}")
        return arg

    def _fn_and(self, arg: Any) -> bool:
        # Every item is evaluated (no short-circuit): a malformed one fails as CloudFormation's validation fails it.
        values = [self._condition_value(c, "Fn::And item") for c in self._conditions_of("Fn::And", arg)]
        return all(values)

    def _fn_or(self, arg: Any) -> bool:
        values = [self._condition_value(c, "Fn::Or item") for c in self._conditions_of("Fn::Or", arg)]
        return any(values)

    def _fn_not(self, arg: Any) -> bool:
        return not self._condition_value(_args("Fn::Not", arg, 1)[0], "Fn::Not item")

    def _fn_find_in_map(self, arg: Any) -> Any:
        if not isinstance(arg, list) or len(arg) not in (3, 4):
            raise TemplateError(f"Fn::FindInMap takes [MapName, TopLevelKey, SecondLevelKey], got {arg!r}")
        if len(arg) == 4:
            self._needs_language_extensions("Fn::FindInMap with DefaultValue")
            if not isinstance(arg[3], Mapping) or set(arg[3]) != {"DefaultValue"}:
                raise TemplateError(f"Fn::FindInMap's fourth item must be {{DefaultValue: ...}}, got {arg[3]!r}")
        keys = [_string(self.resolve(a), "Fn::FindInMap key") for a in arg[:3]]
        node: Any = self.template.get("Mappings") or {}
        for key in keys:
            if not isinstance(node, Mapping) or key not in node:
                if len(arg) == 4:
                    return self.resolve(arg[3]["DefaultValue"])
                raise TemplateError(f"Fn::FindInMap {'/'.join(keys)} has no entry")
            node = node[key]
        return node

    def _fn_select(self, arg: Any) -> Any:
        index, items = self.resolve(_args("Fn::Select", arg, 2)[0]), self.resolve(arg[1])
        if not isinstance(items, list):
            raise TemplateError(f"Fn::Select takes a list, got {items!r}")
        text = _string(index, "Fn::Select index")
        if not (text.isascii() and text.isdigit()) or int(text) >= len(items):  # isdigit alone takes '²'
            raise TemplateError(f"Fn::Select index {text!r} is out of range for {len(items)} items")
        return items[int(text)]

    def _fn_split(self, arg: Any) -> list[str]:
        separator, source = (_string(self.resolve(a), "Fn::Split argument") for a in _args("Fn::Split", arg, 2))
        return source.split(separator)

    def _fn_base64(self, arg: Any) -> str:
        return base64.b64encode(_string(self.resolve(arg), "Fn::Base64 value").encode()).decode()

    def _fn_get_azs(self, arg: Any) -> list[str]:
        region = self.resolve(arg)
        region = self.identity.region if region in ("", None) else _string(region, "Fn::GetAZs region")
        return [f"{region}{zone}" for zone in "abc"]

    def _fn_length(self, arg: Any) -> int:
        self._needs_language_extensions("Fn::Length")
        items = self.resolve(arg)
        if not isinstance(items, list):
            raise TemplateError(f"Fn::Length takes a list, got {items!r}")
        return len(items)

    def _fn_to_json_string(self, arg: Any) -> str:
        self._needs_language_extensions("Fn::ToJsonString")
        return json.dumps(self.resolve(arg), separators=(",", ":"))
