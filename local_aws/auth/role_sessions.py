"""Role sessions: the temporary credentials a service gets when it assumes a role, and the store the edge checks.

On AWS, Step Functions calls ``sts:AssumeRole`` on the state machine's role and signs every task's calls with the
temporary credentials it got; Lambda does the same with the function's execution role and hands the sandbox
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN`` (Lambda developer guide, "Lambda execution
role"; Step Functions developer guide, "How Step Functions works with IAM"). Locally the same credentials come from
moto's STS (in-process, like the service's own call: a service principal needs no signed request), so the session
ARN, key, secret, token and expiry are exactly what ``sts:AssumeRole`` would answer a user, and the edge knows the key
because it reads moto's list of assumed roles.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from moto.iam.access_control import IAMPolicyStatement
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

from local_aws.auth.credentials import Identity
from local_aws.constants import ACCOUNT_ID, PARTITION, REGION, ROLE_SESSION_DURATION_S, ROLE_SESSION_REFRESH_S

STATES_SERVICE = "states.amazonaws.com"
LAMBDA_SERVICE = "lambda.amazonaws.com"
# What AWS says when a role's trust policy does not name the service: Step Functions at task time (observed,
# lumigo-io/lumigo-CLI#83), Lambda at CreateFunction (InvalidParameterValueException; observed wording).
TRUST_MESSAGES = {
    STATES_SERVICE: (
        "Neither the global service principal states.amazonaws.com, nor the regional one is authorized to assume "
        "the provided role."
    ),
    LAMBDA_SERVICE: "The role defined for the function cannot be assumed by Lambda.",
}


class RoleNotAssumable(RuntimeError):
    """The role does not exist in the local IAM (the template did not create it)."""


@dataclass(frozen=True)
class RoleCredentials:
    """Temporary credentials of one role session, as ``sts:AssumeRole`` returns them."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: dt.datetime
    session_arn: str


def _sts() -> object:
    return sts_backends[ACCOUNT_ID][PARTITION]


def trusts(trust_policy: Mapping[str, Any], service: str) -> bool:
    """Whether a role's trust policy lets the service principal ``service`` (global or this region's) assume it.

    The Action and the Condition (with ``aws:SourceAccount``, the one key a same-account service call carries) are
    evaluated by moto's statement engine; moto matches only ``Principal.AWS``, so ``Principal.Service`` is read here.
    """
    name = service.removesuffix(".amazonaws.com")
    principals = {service, f"{name}.{REGION}.amazonaws.com"}
    statements = trust_policy.get("Statement") or []
    for statement in [statements] if isinstance(statements, dict) else statements:
        listed = (statement.get("Principal") or {}).get("Service") if isinstance(statement, dict) else None
        listed_set = {listed} if isinstance(listed, str) else set(listed or [])
        if statement.get("Effect") != "Allow" or not principals & listed_set:
            continue
        engine = IAMPolicyStatement(dict(statement))
        if engine._check_element_matches("Action", "sts:AssumeRole") and engine._check_conditions(
            {"aws:SourceAccount": ACCOUNT_ID}
        ):
            return True
    return False


def assume_role(
    role_arn: str, session_name: str, duration_s: int = ROLE_SESSION_DURATION_S, *, service: str | None = None
) -> RoleCredentials:
    """Assume ``role_arn`` in moto's STS, as the AWS service ``service`` does for the role it was given.

    Raises:
        RoleNotAssumable: no such role in the local IAM (moto's STS would hand out keys for any ARN; AWS refuses), or
            its trust policy does not let ``service`` assume it.
    """
    try:
        role = iam_backends[ACCOUNT_ID][PARTITION].get_role_by_arn(role_arn)
    except Exception as exc:  # moto's NotFoundException
        raise RoleNotAssumable(f"the role {role_arn} does not exist in the local IAM") from exc
    if service is not None and not trusts(json.loads(role.assume_role_policy_document), service):
        raise RoleNotAssumable(TRUST_MESSAGES.get(service, f"{service} is not authorized to assume {role_arn}"))
    session = _sts().assume_role(  # type: ignore[attr-defined]
        region_name=REGION,
        role_session_name=session_name,
        role_arn=role_arn,
        policy=None,
        duration=duration_s,
        external_id=None,
    )
    expiration = session.expiration.replace(tzinfo=dt.UTC)
    return RoleCredentials(
        session.access_key_id, session.secret_access_key, session.session_token, expiration, session.arn
    )


class AssumedRoleStore:
    """The credential store of role sessions: every key moto's STS issued (by the runtime or a user's AssumeRole)."""

    def lookup(self, access_key_id: str) -> Identity | None:
        """The session's identity (with its expiry, which the verifier enforces), or None when STS did not issue it."""
        if not access_key_id.startswith("ASIA"):  # temporary keys only (IAM unique-id prefixes)
            return None
        role = _sts().get_assumed_role_from_access_key(access_key_id)  # type: ignore[attr-defined]
        if role is None:
            return None
        expiration = role.expiration.replace(tzinfo=dt.UTC)
        return Identity(access_key_id, role.secret_access_key, ACCOUNT_ID, role.arn, role.session_token, expiration)


class RoleSessions:
    """One live session per role, renewed before it expires (as the services renew theirs).

    Args:
        session_name: the RoleSessionName; None: a fresh random name per session (Step Functions' own names are
            opaque strings).
        service: the service principal that assumes the roles; its trust is checked (None: not checked).
    """

    def __init__(self, session_name: str | None = None, service: str | None = None) -> None:
        self.session_name = session_name
        self.service = service
        self._lock = threading.Lock()
        self._live: dict[str, RoleCredentials] = {}

    def credentials(self, role_arn: str) -> RoleCredentials:
        """Live credentials of ``role_arn``: the cached session, or a new one within the refresh window of expiry."""
        with self._lock:
            current = self._live.get(role_arn)
            horizon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ROLE_SESSION_REFRESH_S)
            if current is None or current.expiration <= horizon:
                current = assume_role(role_arn, self.session_name or uuid.uuid4().hex, service=self.service)
                self._live[role_arn] = current
            return current

    def refresher(self, role_arn: str) -> Callable[[], dict[str, str]]:
        """A botocore ``refresh_using`` for ``role_arn``: the live session as refreshable-credential metadata."""

        def metadata() -> dict[str, str]:
            creds = self.credentials(role_arn)
            return {
                "access_key": creds.access_key_id,
                "secret_key": creds.secret_access_key,
                "token": creds.session_token,
                "expiry_time": creds.expiration.isoformat(),
            }

        return metadata
