"""Template parameter values: Default, then overrides, validated the way CloudFormation validates them at create time.

Rules from docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html: every value is
a string once referenced (a ``Number`` too); ``CommaDelimitedList`` and ``List<...>`` values are lists of
space-trimmed strings; a parameter without Default needs a value; AllowedValues, AllowedPattern (the whole value),
MinLength/MaxLength and MinValue/MaxValue are enforced.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from local_aws.cloudformation.template import TemplateError

ParameterValue = str | list[str]

_SCALAR_TYPES = frozenset({"String", "Number"})


def scalar_text(value: Any) -> str:
    """A scalar as CloudFormation writes it in a string: booleans are ``true``/``false``, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TemplateError(f"expected a string, number or boolean, got {value!r}")


def _is_list_type(type_name: str) -> bool:
    # List<Number> and List<AWS::EC2::...::Id> are all List<...>; CommaDelimitedList is the one other list type.
    return type_name == "CommaDelimitedList" or (type_name.startswith("List<") and type_name.endswith(">"))


def _coerce(name: str, type_name: str, raw: Any) -> ParameterValue:
    if type_name.startswith("AWS::SSM::Parameter::") or type_name.startswith("List<AWS::SSM::"):
        # The value given is an SSM parameter *name*; Ref returns what SSM holds, which only AWS knows.
        raise TemplateError(f"parameter {name} has SSM type {type_name}; its value lives in SSM, not available locally")
    if _is_list_type(type_name):
        if isinstance(raw, list):
            return [scalar_text(item).strip() for item in raw]
        text = scalar_text(raw)
        return [item.strip() for item in text.split(",")] if text else []
    if type_name not in _SCALAR_TYPES and not type_name.startswith("AWS::"):
        raise TemplateError(f"parameter {name} has unknown Type {type_name!r}")
    if isinstance(raw, list):
        raise TemplateError(f"parameter {name} ({type_name}) takes one value, got the list {raw!r}")
    return scalar_text(raw)


def _check_number(name: str, text: str, spec: Mapping[str, Any]) -> None:
    try:
        number = float(text)
    except ValueError:
        raise TemplateError(f"parameter {name}={text!r} is not a number") from None
    if "MinValue" in spec and number < float(spec["MinValue"]):
        raise TemplateError(f"parameter {name}={text!r} is below MinValue {spec['MinValue']}")
    if "MaxValue" in spec and number > float(spec["MaxValue"]):
        raise TemplateError(f"parameter {name}={text!r} is above MaxValue {spec['MaxValue']}")


def _check_string(name: str, text: str, spec: Mapping[str, Any]) -> None:
    # CloudFormation matches AllowedPattern against the whole value (Java regex; the templates here use the
    # common subset that Python's re reads the same way).
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(str(pattern), text):
        hint = spec.get("ConstraintDescription") or f"must match {pattern}"
        raise TemplateError(f"parameter {name}={text!r} is not allowed: {hint}")
    if "MinLength" in spec and len(text) < int(spec["MinLength"]):
        raise TemplateError(f"parameter {name}={text!r} is shorter than MinLength {spec['MinLength']}")
    if "MaxLength" in spec and len(text) > int(spec["MaxLength"]):
        raise TemplateError(f"parameter {name}={text!r} is longer than MaxLength {spec['MaxLength']}")


def _validate(name: str, type_name: str, value: ParameterValue, spec: Mapping[str, Any]) -> None:
    allowed = spec.get("AllowedValues")
    if allowed is not None:
        valid = [scalar_text(a) for a in allowed]
        for item in value if isinstance(value, list) else [value]:
            if item not in valid:
                raise TemplateError(f"parameter {name}={item!r} is not allowed; valid: {valid}")
    numeric = type_name == "Number" or type_name == "List<Number>"
    for item in value if isinstance(value, list) else [value]:
        if numeric:
            _check_number(name, item, spec)
        elif type_name in ("String", "CommaDelimitedList"):
            _check_string(name, item, spec)


def parameter_values(declared: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, ParameterValue]:
    """Every declared parameter's value: the override if given, else the Default; validated against its spec.

    Args:
        declared: the template's ``Parameters`` section.
        overrides: values to use instead of the defaults (strings, numbers, booleans or lists for list types).

    Returns:
        Parameter name to the value ``Ref`` returns (a string, or a list of strings for list types).

    Raises:
        TemplateError: an override for an undeclared parameter, a parameter with neither Default nor override,
            or a value that breaks its Type or constraints.
    """
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"unknown template parameter(s) {unknown}; valid: {sorted(declared)}")
    values: dict[str, ParameterValue] = {}
    for name, spec in declared.items():
        if not isinstance(spec, Mapping) or "Type" not in spec:
            raise TemplateError(f"parameter {name} has no Type")
        raw = overrides[name] if name in overrides else spec.get("Default")
        if raw is None:
            raise TemplateError(f"template parameter {name} has no Default and no override")
        type_name = str(spec["Type"])
        value = _coerce(name, type_name, raw)
        _validate(name, type_name, value, spec)
        values[name] = value
    return values
