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
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

from local_aws.auth.credentials import Identity
from local_aws.constants import ACCOUNT_ID, PARTITION, REGION, ROLE_SESSION_DURATION_S, ROLE_SESSION_REFRESH_S


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


def assume_role(role_arn: str, session_name: str, duration_s: int = ROLE_SESSION_DURATION_S) -> RoleCredentials:
    """Assume ``role_arn`` in moto's STS, as an AWS service does for the role it was given.

    Raises:
        RoleNotAssumable: no such role in the local IAM (moto's STS would hand out keys for any ARN; AWS refuses).
    """
    try:
        iam_backends[ACCOUNT_ID][PARTITION].get_role_by_arn(role_arn)
    except Exception as exc:  # moto's NotFoundException
        raise RoleNotAssumable(f"the role {role_arn} does not exist in the local IAM") from exc
    role = _sts().assume_role(  # type: ignore[attr-defined]
        region_name=REGION,
        role_session_name=session_name,
        role_arn=role_arn,
        policy=None,
        duration=duration_s,
        external_id=None,
    )
    expiration = role.expiration.replace(tzinfo=dt.UTC)
    return RoleCredentials(role.access_key_id, role.secret_access_key, role.session_token, expiration, role.arn)


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
    """

    def __init__(self, session_name: str | None = None) -> None:
        self.session_name = session_name
        self._lock = threading.Lock()
        self._live: dict[str, RoleCredentials] = {}

    def credentials(self, role_arn: str) -> RoleCredentials:
        """Live credentials of ``role_arn``: the cached session, or a new one within the refresh window of expiry."""
        with self._lock:
            current = self._live.get(role_arn)
            horizon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ROLE_SESSION_REFRESH_S)
            if current is None or current.expiration <= horizon:
                current = assume_role(role_arn, self.session_name or uuid.uuid4().hex)
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
