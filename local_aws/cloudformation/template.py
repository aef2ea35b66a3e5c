"""Reading the two files a SAM deployment starts from: the template (YAML with CFN tags) and samconfig.

``load_template`` turns the CloudFormation short forms (``!Ref x``, ``!GetAtt a.b``, ``!Sub ...``) into their JSON
long forms, so every consumer sees one shape. ``samconfig_overrides`` / ``samconfig_stack_name`` (both at once:
``samconfig_deploy``) read one environment of samconfig.toml the way ``sam deploy --config-env ENV`` reads it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from local_aws.constants import TEMPLATE_PATH


class TemplateError(ValueError):
    """A template, parameter or samconfig value that CloudFormation would reject or this module cannot resolve."""


# Every short form CloudFormation defines, including the rule functions (which only the Rules section may use):
# docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference.html
_SHORT_TAGS: dict[str, str] = {
    "Ref": "Ref",
    "Condition": "Condition",
    **{
        tag: f"Fn::{tag}"
        for tag in (
            "GetAtt",
            "Sub",
            "Join",
            "If",
            "Equals",
            "And",
            "Or",
            "Not",
            "FindInMap",
            "Select",
            "Split",
            "Base64",
            "GetAZs",
            "ImportValue",
            "Cidr",
            "Transform",
            "Length",
            "ToJsonString",
            "Contains",
            "EachMemberEquals",
            "EachMemberIn",
            "RefAll",
            "ValueOf",
            "ValueOfAll",
        )
    },
}

# The top-level sections CloudFormation accepts, plus SAM's Globals: anything else is rejected at create time
# (docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-anatomy.html).
_SECTIONS = frozenset(
    {
        "AWSTemplateFormatVersion",
        "Description",
        "Metadata",
        "Parameters",
        "Rules",
        "Mappings",
        "Conditions",
        "Transform",
        "Resources",
        "Outputs",
        "Globals",
    }
)


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader for CloudFormation YAML: short-form tags become long form; duplicate keys and unknown tags fail."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # PyYAML keeps the last of two equal keys; a duplicated property would silently vanish (cfn-lint E0000).
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise TemplateError(f"duplicate key {key_node.value!r} {key_node.start_mark}")
                seen.add(key_node.value)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _short_form(tag: str, long_form: str) -> Callable[[_CfnLoader, yaml.Node], dict[str, Any]]:
    def construct(loader: _CfnLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":  # !GetAtt Resource.Attribute[.Nested]: the logical id never contains a dot
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {long_form: value}

    return construct


def _unknown_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> Any:
    raise TemplateError(
        f"unknown YAML tag !{suffix} {node.start_mark}; CloudFormation short forms: {sorted(_SHORT_TAGS)}"
    )


def _timestamp_as_text(loader: _CfnLoader, node: yaml.Node) -> str:
    # CloudFormation reads `AWSTemplateFormatVersion: 2010-09-09` (unquoted) as the string, not as a date.
    return str(loader.construct_scalar(node))


for _tag, _long in _SHORT_TAGS.items():
    _CfnLoader.add_constructor(f"!{_tag}", _short_form(_tag, _long))
_CfnLoader.add_multi_constructor("!", _unknown_tag)
_CfnLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def load_template(path: Path | str = TEMPLATE_PATH) -> dict[str, Any]:
    """Load a CloudFormation or SAM template (YAML or JSON), with short-form intrinsics in their long form.

    Args:
        path: the template file; default: the repository's ``template.yaml``.

    Returns:
        The template as plain data: ``!Ref x`` is ``{"Ref": "x"}``, ``!GetAtt a.b`` is ``{"Fn::GetAtt": ["a", "b"]}``.

    Raises:
        TemplateError: the file is missing, is not YAML, uses an unknown tag or a duplicate key, or is not a
            template (not a mapping, no non-empty Resources, or an unknown top-level section).
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_CfnLoader)  # a SafeLoader subclass: no arbitrary objects
    except OSError as exc:
        raise TemplateError(f"cannot read template {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path} is not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict) or not data["Resources"]:
        raise TemplateError(f"{path} is not a CloudFormation template (no non-empty Resources section)")
    unknown = sorted(set(data) - _SECTIONS)
    if unknown:
        raise TemplateError(f"{path} has unknown top-level section(s) {unknown}; valid: {sorted(_SECTIONS)}")
    return data


# ---------------------------------------------------------------------------------------------------------- samconfig
def read_samconfig(path: Path | str) -> dict[str, Any]:
    """The whole samconfig document (TOML, or YAML for .yaml/.yml), as SAM CLI reads it.

    Raises:
        TemplateError: the file is missing or unreadable, or is not a samconfig document.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"cannot read samconfig {path}: {exc}") from exc
    try:
        # SAM CLI reads samconfig.toml, samconfig.yaml and samconfig.yml (serverless-sam-cli-config.html).
        config = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise TemplateError(f"{path} is not valid samconfig: {exc}") from exc
    if not isinstance(config, dict):
        raise TemplateError(f"{path} is not a samconfig file (top level is not a table)")
    return config


def _command_parameters(path: Path | str, env: str, command: str) -> dict[str, Any]:
    """One command's ``parameters`` table of one environment, on top of that environment's ``global`` table.

    SAM CLI merges key by key, command over global, so a ``deploy`` ``parameter_overrides`` replaces (not extends) a
    ``global`` one (samcli.lib.config.samconfig.SamConfig.get_all).
    """
    path = Path(path)
    config = read_samconfig(path)
    envs = sorted(name for name, table in config.items() if isinstance(table, dict))
    if env not in envs:
        # NOTE: SAM CLI silently deploys without config for an unknown --config-env; a typo must not do that here.
        raise TemplateError(f"samconfig environment {env!r} not found in {path}; valid: {', '.join(envs)}")
    tables = config[env]
    merged: dict[str, Any] = {}
    for name in ("global", command):
        params = (tables.get(name) or {}).get("parameters") or {}
        if not isinstance(params, dict):
            raise TemplateError(f"{path}: [{env}.{name}.parameters] is not a table")
        merged.update(params)
    return merged


def _split_words(text: str) -> list[str]:
    """Split on unquoted, unescaped whitespace; quotes and backslashes stay in the words."""
    words: list[str] = []
    current: list[str] = []
    quote: str | None = None
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif quote is not None:
            current.append(char)
            quote = None if char == quote else quote
        elif char in "\"'":
            current.append(char)
            quote = char
        elif char.isspace():
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(char)
    if quote is not None:
        raise TemplateError(f"unterminated {quote} quote in parameter_overrides {text!r}")
    if current:
        words.append("".join(current))
    return words


def _unquote(value: str) -> str:
    # samcli.cli.types._unquote_wrapped_quotes: strip one pair of wrapping quotes, then unescape.
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value.replace("\\ ", " ").replace('\\"', '"').replace("\\'", "'")


def _parse_override(word: str, source: Path) -> tuple[str, str]:
    if word.startswith("ParameterKey="):
        key_part, sep, value = word.partition(",ParameterValue=")
        key = key_part.removeprefix("ParameterKey=")
    else:
        key, sep, value = word.partition("=")
    key = _unquote(key)
    if not sep or not key.isalnum():
        raise TemplateError(
            f"parameter_overrides entry {word!r} in {source} is not Key=Value or ParameterKey=K,ParameterValue=V"
        )
    if value == "":
        raise TemplateError(f'parameter_overrides entry {word!r} in {source} has no value (write {key}="" for empty)')
    return key, _unquote(value)


def _flatten(raw: Any) -> Iterable[Any]:
    if isinstance(raw, list | tuple):
        for item in raw:
            yield from _flatten(item)
    else:
        yield raw


def _overrides(raw: Any, path: Path | str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in _flatten(raw if raw is not None else []):
        if isinstance(item, Mapping):
            result.update({str(k): "" if v is None else str(v) for k, v in item.items()})
        elif isinstance(item, str):
            result.update(_parse_override(word, Path(path)) for word in _split_words(item))
        else:
            raise TemplateError(f"parameter_overrides item {item!r} in {path} is not a string")
    return result


def _stack_name(params: Mapping[str, Any]) -> str | None:
    name = params.get("stack_name")
    return str(name) if name else None


def samconfig_overrides(path: Path | str, env: str = "default") -> dict[str, str]:
    """The template parameter values one samconfig environment passes to ``sam deploy``.

    ``parameter_overrides`` may be a string (``Key=Value Key2="a b"`` or ``ParameterKey=K,ParameterValue=V``), a
    list of such strings, or (samconfig.yaml) a mapping, as SAM CLI accepts it (samcli.cli.types).

    Args:
        path: samconfig.toml (or .yaml/.yml).
        env: the ``--config-env`` name.

    Returns:
        Parameter name to value, all strings.

    Raises:
        TemplateError: unreadable file, unknown environment (the message lists the valid ones) or a malformed entry.
    """
    return _overrides(_command_parameters(path, env, "deploy").get("parameter_overrides"), path)


def samconfig_stack_name(path: Path | str, env: str = "default") -> str | None:
    """The stack name ``sam deploy --config-env ENV`` uses (``deploy`` over ``global``), or None if unset.

    Raises:
        TemplateError: unreadable file or unknown environment.
    """
    return _stack_name(_command_parameters(path, env, "deploy"))


def samconfig_deploy(path: Path | str, env: str = "default") -> tuple[dict[str, str], str | None]:
    """``samconfig_overrides`` and ``samconfig_stack_name`` of one environment, from one read of the file.

    Raises:
        TemplateError: as ``samconfig_overrides``.
    """
    params = _command_parameters(path, env, "deploy")
    return _overrides(params.get("parameter_overrides"), path), _stack_name(params)
