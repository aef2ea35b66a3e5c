"""A Lambda function as ``template.yaml`` declares it: handler, code, environment, concurrency, timeout, memory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_aws.cloudformation import (
    FUNCTION_TYPES,
    Resolver,
    function_environment,
    function_property,
    load_template,
    make_resolver,
)
from local_aws.constants import TEMPLATE_PATH


class FunctionConfigError(ValueError):
    """template.yaml does not describe a function this emulator can run."""


@dataclass
class FunctionSpec:
    """What Lambda needs to run the function."""

    logical_id: str
    handler: str
    code_dir: Path
    environment: dict[str, str] = field(default_factory=dict)
    reserved_concurrency: int | None = None
    timeout_s: float = 3.0
    memory_mb: int = 128
    function_name: str = ""
    role_arn: str = ""  # the execution role (``Role``); empty: SAM would generate one from ``Policies``

    def __post_init__(self) -> None:
        if not self.function_name:
            self.function_name = self.logical_id

    @property
    def log_group(self) -> str:
        """The CloudWatch log group Lambda writes the function's output to."""
        return f"/aws/lambda/{self.function_name}"


def function_spec_from_template(
    logical_id: str,
    template_path: Path = TEMPLATE_PATH,
    overrides: Mapping[str, str] | None = None,
    *,
    resolver: Resolver | None = None,
) -> FunctionSpec:
    """Resolve one function of the template (SAM's Globals.Function merged in).

    Args:
        logical_id: the function's logical id.
        template_path: the template; a relative CodeUri is relative to its directory.
        overrides: parameter values instead of the defaults (not with ``resolver``).
        resolver: the start's resolver of that template (it holds the loaded template and its parameters);
            default: one built from ``template_path`` and ``overrides``.

    Raises:
        FunctionConfigError: not a function, or its CodeUri is not a local directory.
    """
    if resolver is not None and overrides:
        raise TypeError("the resolver has its parameters already; give overrides to make_resolver")
    template = resolver.template if resolver is not None else load_template(template_path)
    resources = template.get("Resources") or {}
    resource = resources.get(logical_id) or {}
    if resource.get("Type") not in FUNCTION_TYPES:
        functions = sorted(lid for lid, res in resources.items() if res.get("Type") in FUNCTION_TYPES)
        raise FunctionConfigError(f"{logical_id!r} is not a function of {template_path}; functions: {functions}")
    # NOTE: one resolver for every property: building one validates all parameters again.
    function_resolver = resolver if resolver is not None else make_resolver(template, dict(overrides or {}))

    def prop(name: str) -> Any:
        return function_property(function_resolver, logical_id, name)

    code_uri = prop("CodeUri")
    if not isinstance(code_uri, str):
        raise FunctionConfigError(f"{logical_id}: CodeUri must be a local directory, got {code_uri!r}")
    code_dir = Path(code_uri)
    if not code_dir.is_absolute():
        code_dir = Path(template_path).resolve().parent / code_dir
    reserved = prop("ReservedConcurrentExecutions")
    name = prop("FunctionName") or function_resolver.physical_name(logical_id)
    return FunctionSpec(
        logical_id=logical_id,
        handler=str(prop("Handler")),
        code_dir=code_dir,
        environment=function_environment(function_resolver, logical_id),
        reserved_concurrency=int(reserved) if reserved is not None else None,
        timeout_s=float(prop("Timeout") or 3),
        memory_mb=int(prop("MemorySize") or 128),
        function_name=str(name),
        role_arn=str(prop("Role") or ""),
    )
