"""A Lambda function as ``template.yaml`` declares it: handler, code, environment, concurrency, timeout, memory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_aws.cloudformation import function_environment, function_property, load_template, make_resolver
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

    def __post_init__(self) -> None:
        if not self.function_name:
            self.function_name = self.logical_id


def function_spec_from_template(
    logical_id: str, template_path: Path = TEMPLATE_PATH, overrides: Mapping[str, str] | None = None
) -> FunctionSpec:
    """Resolve one function of the template (SAM's Globals.Function merged in).

    Raises:
        FunctionConfigError: not a function, or its CodeUri is not a local directory.
    """
    template = load_template(template_path)
    resource = (template.get("Resources") or {}).get(logical_id) or {}
    if resource.get("Type") not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
        functions = sorted(
            lid
            for lid, res in (template.get("Resources") or {}).items()
            if res.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function")
        )
        raise FunctionConfigError(f"{logical_id!r} is not a function of {template_path}; functions: {functions}")
    params = dict(overrides or {})

    def prop(name: str) -> Any:
        return function_property(template, logical_id, name, params)

    code_uri = prop("CodeUri")
    if not isinstance(code_uri, str):
        raise FunctionConfigError(f"{logical_id}: CodeUri must be a local directory, got {code_uri!r}")
    code_dir = Path(code_uri)
    if not code_dir.is_absolute():
        code_dir = Path(template_path).resolve().parent / code_dir
    reserved = prop("ReservedConcurrentExecutions")
    name = prop("FunctionName") or make_resolver(template, params).physical_name(logical_id)
    return FunctionSpec(
        logical_id=logical_id,
        handler=str(prop("Handler")),
        code_dir=code_dir,
        environment=function_environment(template, logical_id, params),
        reserved_concurrency=int(reserved) if reserved is not None else None,
        timeout_s=float(prop("Timeout") or 3),
        memory_mb=int(prop("MemorySize") or 128),
        function_name=str(name),
    )
