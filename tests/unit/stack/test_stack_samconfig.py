"""samconfig.toml: default/dev/prod environments that deploy the template as is, with no account ids."""

from __future__ import annotations

import re
from typing import Any

import pytest

from local_aws.cloudformation import (
    Resolver,
    TemplateError,
    read_samconfig,
    samconfig_overrides,
    samconfig_stack_name,
)
from local_aws.constants import SAMCONFIG_PATH

ENVIRONMENTS = ("default", "dev", "prod")


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    return read_samconfig(SAMCONFIG_PATH)


def parameter_overrides(env: str) -> dict[str, str]:
    return samconfig_overrides(SAMCONFIG_PATH, env)


def test_no_account_ids_or_credentials(samconfig: dict[str, Any]) -> None:
    text = SAMCONFIG_PATH.read_text()
    assert not re.search(r"(?<!\d)\d{12}(?!\d)", text), "account id in samconfig.toml"
    assert not re.search(r"(?i)aws_(secret|access|session)|arn:aws", text)
    for env in ENVIRONMENTS:
        deploy = samconfig[env]["deploy"]["parameters"]
        assert "s3_bucket" not in deploy, "use resolve_s3 instead of a named (account-specific) bucket"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_has_the_deploy_essentials(samconfig: dict[str, Any], env: str) -> None:
    assert samconfig["version"] == 0.1
    assert samconfig[env]["global"]["parameters"]["stack_name"].startswith("dogbreed-")
    deploy = samconfig[env]["deploy"]["parameters"]
    assert deploy["resolve_s3"] is True
    assert "CAPABILITY_IAM" in deploy["capabilities"]
    assert isinstance(deploy["confirm_changeset"], bool)


def test_prod_reviews_change_sets_and_is_resilient(samconfig: dict[str, Any]) -> None:
    assert samconfig["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    prod = parameter_overrides("prod")
    assert prod["EnvironmentName"] == "prod"
    assert int(prod["EndpointMinCapacity"]) >= 2  # two instances spread across AZs (checklist item 31)
    assert (
        samconfig["prod"]["global"]["parameters"]["stack_name"]
        != samconfig["dev"]["global"]["parameters"]["stack_name"]
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_overrides_are_valid_template_parameter_values(template: dict[str, Any], env: str) -> None:
    overrides = parameter_overrides(env)
    params = template["Parameters"]
    for name, value in overrides.items():
        assert name in params, f"{env}: unknown parameter {name}"
        spec = params[name]
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], (env, name, value)
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), (env, name, value)
        if spec["Type"] == "Number":
            assert spec.get("MinValue", float("-inf")) <= float(value) <= spec.get("MaxValue", float("inf")), name
    values = Resolver(template, overrides).parameters  # raises if CloudFormation would reject a value
    assert int(values["LambdaProvisionedConcurrency"]) <= int(values["LambdaReservedConcurrency"]), env
    assert int(values["EndpointMinCapacity"]) <= int(values["EndpointMaxCapacity"]), env
    assert int(values["ApiThrottlingRateLimit"]) <= int(values["ApiThrottlingBurstLimit"]), env


def test_environment_names_match_stack_names(samconfig: dict[str, Any]) -> None:
    for env in ENVIRONMENTS:
        environment = parameter_overrides(env).get("EnvironmentName", "dev")
        assert samconfig[env]["global"]["parameters"]["stack_name"] == f"dogbreed-{environment}"
        assert samconfig_stack_name(SAMCONFIG_PATH, env) == f"dogbreed-{environment}"


def test_overrides_are_parsed_completely_and_unknown_environments_fail(samconfig: dict[str, Any]) -> None:
    for env in ENVIRONMENTS:
        raw = samconfig[env]["deploy"]["parameters"].get("parameter_overrides", "")
        # Every Key="Value" pair of the file is read (none silently skipped).
        assert len(parameter_overrides(env)) == len(re.findall(r"\w+=", raw)), env
    with pytest.raises(TemplateError, match=r"'staging' not found.*valid: default, dev, prod"):
        parameter_overrides("staging")
