"""What the local runtime reads from a resolved template: substitutions, function settings, API routes, outputs.

``make_resolver`` takes parameter defaults, then a samconfig environment's overrides, then explicit overrides, so the
local stack gets the values ``sam deploy --config-env ENV`` would give the real one. The helpers take that resolver
(one per start: it holds the template and validated its parameters once), or a loaded template to build one from.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local_aws.cloudformation.parameters import scalar_text
from local_aws.cloudformation.resolver import NO_VALUE, Resolver
from local_aws.cloudformation.template import TemplateError, samconfig_deploy
from local_aws.constants import ACCOUNT_ID, DEFAULT_STACK_NAME, FUNCTION_LOGICAL_ID, REGION, STATE_MACHINE_LOGICAL_ID

_STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
# The resource types that declare a Lambda function (SAM's, and the plain CloudFormation one).
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
_INTRINSIC_KEYS = ("Ref", "Condition")


def make_resolver(
    template: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    *,
    samconfig: Path | str | None = None,
    env: str = "default",
    stack_name: str | None = None,
    region: str = REGION,
    account_id: str = ACCOUNT_ID,
) -> Resolver:
    """A resolver whose parameters are: Default < the samconfig environment's parameter_overrides < ``overrides``.

    Args:
        template: the loaded template.
        overrides: parameter values that win over samconfig and defaults.
        samconfig: samconfig.toml to read ``env`` from; None: no samconfig.
        env: the samconfig environment (``--config-env``).
        stack_name: ``AWS::StackName``; default: the samconfig environment's stack_name, else ``DEFAULT_STACK_NAME``.
        region: ``AWS::Region``.
        account_id: ``AWS::AccountId``.

    Raises:
        TemplateError: unreadable samconfig, unknown environment, or parameter values CloudFormation would reject.
    """
    params: dict[str, Any] = {}
    if samconfig is not None:
        samconfig_params, samconfig_name = samconfig_deploy(samconfig, env)  # one read of the file
        params.update(samconfig_params)
        stack_name = stack_name or samconfig_name
    params.update(overrides or {})
    return Resolver(template, params, stack_name=stack_name or DEFAULT_STACK_NAME, region=region, account_id=account_id)


def _resolver_of(
    source: Mapping[str, Any] | Resolver,
    overrides: Mapping[str, Any] | None,
    samconfig: Path | str | None,
    env: str,
    region: str,
    account_id: str,
) -> Resolver:
    """``source`` itself when it is a Resolver, else ``make_resolver`` of the template ``source``."""
    if not isinstance(source, Resolver):
        return make_resolver(source, overrides, samconfig=samconfig, env=env, region=region, account_id=account_id)
    # NOTE: a resolver's parameters and identity are fixed; settings given with it would be silently ignored.
    if overrides or samconfig is not None or env != "default" or (region, account_id) != (REGION, ACCOUNT_ID):
        raise TypeError("with a Resolver, give overrides, samconfig, env, region and account_id to make_resolver")
    return source


def _declared(resolver: Resolver, logical_id: str, types: tuple[str, ...]) -> Mapping[str, Any]:
    resource = resolver.resource(logical_id)
    if resource.get("Type") not in types:
        raise TemplateError(f"{logical_id} is a {resource.get('Type')}, expected one of {list(types)}")
    resolver.created_resource(logical_id)  # a resource whose Condition is false has no properties to read
    props = resource.get("Properties") or {}
    if not isinstance(props, Mapping):
        raise TemplateError(f"{logical_id}.Properties is not a mapping")
    return props


def _strings(values: Any, where: str) -> dict[str, str]:
    if not isinstance(values, Mapping):
        raise TemplateError(f"{where} must be a mapping, got {values!r}")
    result: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, list | Mapping):
            raise TemplateError(f"{where}.{key} must be a string, number or boolean, got {value!r}")
        result[str(key)] = scalar_text(value)
    return result


def definition_substitutions(
    template: Mapping[str, Any] | Resolver,
    overrides: Mapping[str, Any] | None = None,
    *,
    samconfig: Path | str | None = None,
    env: str = "default",
    logical_id: str = STATE_MACHINE_LOGICAL_ID,
    region: str = REGION,
    account_id: str = ACCOUNT_ID,
) -> dict[str, str]:
    """A state machine's DefinitionSubstitutions, resolved to the strings Step Functions substitutes.

    ``template`` is the start's Resolver, or a loaded template to resolve with the other arguments.

    Raises:
        TemplateError: ``logical_id`` is not a created state machine, or a value does not resolve to a scalar.
    """
    resolver = _resolver_of(template, overrides, samconfig, env, region, account_id)
    props = _declared(resolver, logical_id, _STATE_MACHINE_TYPES)
    subs = resolver.resolve(props.get("DefinitionSubstitutions") or {})
    return _strings(subs, f"{logical_id}.DefinitionSubstitutions")


def _is_intrinsic(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) == 1
        and any(key in _INTRINSIC_KEYS or str(key).startswith("Fn::") for key in value)
    )


def _merge_globals(global_value: Any, local_value: Any) -> Any:
    # SAM Globals: maps merge key by key, lists concatenate (Globals first), anything else (intrinsics included)
    # the resource's value wins (sam-specification-template-anatomy-globals.html; samtranslator GlobalProperties).
    both_maps = isinstance(global_value, Mapping) and isinstance(local_value, Mapping)
    if both_maps and not (_is_intrinsic(global_value) or _is_intrinsic(local_value)):
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = _merge_globals(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return [*global_value, *local_value]
    return local_value


def function_property(
    template: Mapping[str, Any] | Resolver,
    logical_id: str,
    name: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    samconfig: Path | str | None = None,
    env: str = "default",
    region: str = REGION,
    account_id: str = ACCOUNT_ID,
) -> Any:
    """One resolved property of a SAM function, merged with ``Globals.Function`` as SAM merges it.

    ``template`` is the start's Resolver, or a loaded template to resolve with the other arguments.

    Returns:
        The resolved value, or None if neither the function nor Globals sets it (or it resolves to AWS::NoValue).
    """
    resolver = _resolver_of(template, overrides, samconfig, env, region, account_id)
    props = _declared(resolver, logical_id, FUNCTION_TYPES)
    globals_fn: Mapping[str, Any] = {}
    if resolver.resource(logical_id).get("Type") == "AWS::Serverless::Function":  # Globals are SAM's
        globals_fn = (resolver.template.get("Globals") or {}).get("Function") or {}
    if name in props and name in globals_fn:
        raw = _merge_globals(globals_fn[name], props[name])
    elif name in props or name in globals_fn:
        raw = props[name] if name in props else globals_fn[name]
    else:
        return None
    value = resolver.resolve(raw)
    return None if value is NO_VALUE else value


def function_environment(
    template: Mapping[str, Any] | Resolver,
    logical_id: str = FUNCTION_LOGICAL_ID,
    overrides: Mapping[str, Any] | None = None,
    *,
    samconfig: Path | str | None = None,
    env: str = "default",
    region: str = REGION,
    account_id: str = ACCOUNT_ID,
) -> dict[str, str]:
    """A SAM function's environment variables (``Globals.Function`` merged with the function's own), as strings.

    ``template`` is the start's Resolver, or a loaded template to resolve with the other arguments.
    """
    environment = function_property(
        template,
        logical_id,
        "Environment",
        overrides,
        samconfig=samconfig,
        env=env,
        region=region,
        account_id=account_id,
    )
    variables = (environment or {}).get("Variables") or {}
    return _strings(variables, f"{logical_id}.Environment.Variables")


def api_events(template: Mapping[str, Any], logical_id: str = FUNCTION_LOGICAL_ID) -> list[tuple[str, str]]:
    """The sorted ``(path, METHOD)`` pairs of a SAM function's REST API (``Type: Api``) events.

    Raises:
        TemplateError: unknown function, an event that is not a mapping, or an Api event whose Path or Method is
            not a literal string.
    """
    resource = (template.get("Resources") or {}).get(logical_id)
    if not isinstance(resource, Mapping) or resource.get("Type") not in FUNCTION_TYPES:
        raise TemplateError(f"{logical_id!r} is not a function of the template")
    routes = []
    for event_id, event in ((resource.get("Properties") or {}).get("Events") or {}).items():
        if not isinstance(event, Mapping):
            raise TemplateError(f"{logical_id} event {event_id} is not a mapping")
        if event.get("Type") != "Api":
            continue
        props = event.get("Properties") or {}
        path, method = props.get("Path"), props.get("Method")
        if not isinstance(path, str) or not isinstance(method, str):
            raise TemplateError(
                f"{logical_id} event {event_id}: Path and Method must be strings, got {path!r}, {method!r}"
            )
        routes.append((path, method.upper()))
    return sorted(routes)


def stack_outputs(template: Mapping[str, Any], resolver: Resolver) -> dict[str, str]:
    """The stack's Outputs as DescribeStacks reports them: resolved, without those whose Condition is false.

    Output values must be strings (outputs-section-structure.html); numbers and booleans are written as text.

    Raises:
        TemplateError: an output without Value, or one that resolves to a list or mapping.
    """
    result: dict[str, str] = {}
    for key, output in (template.get("Outputs") or {}).items():
        if not isinstance(output, Mapping) or "Value" not in output:
            raise TemplateError(f"output {key} has no Value")
        condition = output.get("Condition")
        if condition is not None and not resolver.condition(str(condition)):
            continue
        value = resolver.resolve(output["Value"])
        if value is NO_VALUE or isinstance(value, list | Mapping):
            raise TemplateError(f"output {key} must resolve to a string (use Fn::Join for lists), got {value!r}")
        result[str(key)] = scalar_text(value)
    return result
