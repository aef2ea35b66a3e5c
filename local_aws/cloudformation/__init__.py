"""The one CloudFormation resolver of this repository, used by the local runtime and by the stack tests.

``template`` reads template.yaml (short-form tags to long form) and samconfig.toml environments; ``resolver``
resolves intrinsic functions and conditions the way CloudFormation does, in a given account, region and stack;
``resources`` says what Ref/GetAtt return per resource type; ``stack`` has what the local runtime reads from a
resolved template (DefinitionSubstitutions, function settings, API routes, Outputs). Account, region, stack name and
file locations default to ``local_aws.constants``.

Typical use::

    from local_aws.cloudformation import load_template, make_resolver, stack_outputs

    template = load_template()  # the repository's template.yaml
    resolver = make_resolver(template, samconfig=SAMCONFIG_PATH, env="prod")
    resolver.resolve(template["Resources"]["DataBucket"]["Properties"]["BucketName"])
    stack_outputs(template, resolver)
"""

from __future__ import annotations

from local_aws.cloudformation.resolver import NO_VALUE, Resolver, partition_of
from local_aws.cloudformation.stack import (
    FUNCTION_TYPES,
    api_events,
    definition_substitutions,
    function_environment,
    function_property,
    make_resolver,
    stack_outputs,
)
from local_aws.cloudformation.template import (
    TemplateError,
    load_template,
    read_samconfig,
    samconfig_overrides,
    samconfig_stack_name,
)

__all__ = [
    "FUNCTION_TYPES",
    "NO_VALUE",
    "Resolver",
    "TemplateError",
    "api_events",
    "definition_substitutions",
    "function_environment",
    "function_property",
    "load_template",
    "make_resolver",
    "partition_of",
    "read_samconfig",
    "samconfig_overrides",
    "samconfig_stack_name",
    "stack_outputs",
]
