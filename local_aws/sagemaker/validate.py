"""Input validation against botocore's own SageMaker service model (required members, patterns, enums, ranges).

Messages follow the real service: ``1 validation error detected: Value null at 'trainingJobName' failed to satisfy
constraint: Member must not be null``.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

from local_aws.sagemaker.errors import SageMakerError, validation


@functools.cache
def service_model() -> ServiceModel:
    """The sagemaker (control plane) service model shipped with botocore."""
    return botocore.session.get_session().get_service_model("sagemaker")


def operation(name: str) -> OperationModel:
    """Look an operation up; unknown names raise ``UnknownOperationException`` like the real endpoint."""
    try:
        return service_model().operation_model(name)
    except Exception as exc:  # botocore raises OperationNotFoundError
        raise SageMakerError("UnknownOperationException", f"Unknown operation {name}") from exc


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


@functools.cache
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: skip rather than reject valid input
        return None


def _check(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a structure")
            return
        for req in shape.required_members:
            if value.get(req) is None:
                errors.append(
                    f"Value null at '{_join(path, req)}' failed to satisfy constraint: Member must not be null"
                )
        for key, member in shape.members.items():
            if value.get(key) is not None:
                _check(member, value[key], _join(path, key), errors)
    elif kind == "list":
        if not isinstance(value, list):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a list")
            return
        _check_len(shape, len(value), value, path, errors)
        for i, item in enumerate(value):
            _check(shape.member, item, f"{path}.{i + 1}.member", errors)
    elif kind == "map":
        if not isinstance(value, dict):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a map")
            return
        _check_len(shape, len(value), value, path, errors)
        for k, v in value.items():
            _check(shape.value, v, f"{path}.{k}", errors)
    elif kind == "string":
        if not isinstance(value, str):
            errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must be a string")
            return
        enum = shape.enum
        if enum and value not in enum:
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(enum)}]"
            )
        _check_len(shape, len(value), value, path, errors)
        pattern = shape.metadata.get("pattern")
        rx = _regex(pattern) if pattern else None
        if rx is not None and not rx.fullmatch(value):  # Java matches() semantics
            errors.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {pattern}"
            )
    elif kind in ("integer", "long", "float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must be a number")
            return
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        if lo is not None and value < lo:
            errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value >= {lo}")
        if hi is not None and value > hi:
            errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must have value <= {hi}")
    elif kind == "boolean" and not isinstance(value, bool):
        errors.append(f"Value '{value}' at '{path}' failed to satisfy constraint: Member must be a boolean")


def _check_len(shape: Shape, n: int, value: Any, path: str, errors: list[str]) -> None:
    lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
    shown = value if isinstance(value, str) else "[...]"
    if lo is not None and n < lo:
        errors.append(f"Value '{shown}' at '{path}' failed to satisfy constraint: Member must have length >= {lo}")
    if hi is not None and n > hi:
        errors.append(f"Value '{shown}' at '{path}' failed to satisfy constraint: Member must have length <= {hi}")


def _join(path: str, member: str) -> str:
    return f"{path}.{_camel(member)}" if path else _camel(member)


def validate_input(op_name: str, params: Any) -> OperationModel:
    """Validate a request body against the operation's input shape.

    Args:
        op_name: the operation (``CreateTrainingJob``).
        params: the decoded JSON body.

    Returns:
        The operation model.

    Raises:
        SageMakerError: ``UnknownOperationException`` or ``ValidationException`` naming every bad member.
    """
    op = operation(op_name)
    if not isinstance(params, dict):
        raise SageMakerError("SerializationException", "Request body must be a JSON object")
    if op.input_shape is None:
        return op
    errors: list[str] = []
    _check(op.input_shape, params, "", errors)
    if errors:
        count = len(errors)
        raise validation(f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(errors))
    return op
