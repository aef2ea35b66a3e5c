"""Policy helpers and allowlists shared by the offline template tests and the tool tests (tests/integration/stack).

Template evaluation is not here: every test resolves the template with ``local_aws.cloudformation``, the resolver the
local runtime uses, so the tests check the values the runtime (and CloudFormation) would use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local_aws.constants import REPO_ROOT

CONTRACTS_PATH = REPO_ROOT / "docs" / "CONTRACTS.md"


def statements(policy_document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A policy document's statements as a list (IAM accepts a single statement object too)."""
    stmts = policy_document["Statement"]
    return [stmts] if isinstance(stmts, dict) else list(stmts)


def as_list(value: Any) -> list[Any]:
    """An IAM Action/Resource value as a list (IAM accepts a single string too)."""
    return value if isinstance(value, list) else [value]


def role_statements(evaluated_template: Mapping[str, Any], role_id: str) -> list[dict[str, Any]]:
    """Every Allow/Deny statement of a role's inline policies (already evaluated)."""
    role = evaluated_template["Resources"][role_id]
    out: list[dict[str, Any]] = []
    for policy in role["Properties"].get("Policies", []):
        for stmt in statements(policy["PolicyDocument"]):
            out.append({**stmt, "_policy": policy["PolicyName"]})
    return out


# Checkov ids that may be skipped, and on which resources (security checklist §1.4 and §6 item 2).
CHECKOV_SKIP_ALLOWLIST: dict[str, set[str]] = {
    "CKV_AWS_18": {"AccessLogBucket"},
    "CKV_AWS_116": {"InferenceFunction"},
    "CKV_AWS_117": {"InferenceFunction"},
    "CKV_AWS_173": {"InferenceFunction"},
    "CKV_AWS_120": {"InferenceApi"},
    "CKV_AWS_111": {"StateMachineRole"},
    "CKV_AWS_158": {"InferenceFunctionLogGroup", "StateMachineLogGroup", "ApiAccessLogGroup"},
    "CKV_AWS_119": {"DeployLockTable"},
}
