"""local_aws.stepfunctions.interpreter.route_sdk_calls: a task's SDK calls sign as a session of the task's role."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials

from local_aws.auth.role_sessions import RoleCredentials, RoleSessions
from local_aws.stepfunctions import interpreter

ROLE = "arn:aws:iam::123456789012:role/dogbreed-dev-StateMachineRole-ABC"


class FakeSessions(RoleSessions):
    """Hands out one fixed session per role and counts the roles asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def credentials(self, role_arn: str) -> RoleCredentials:
        self.asked.append(role_arn)
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        return RoleCredentials("ASIAROLESESSION00001", "role/secret", "role-token", expiry, f"{role_arn}/s")


@pytest.fixture(autouse=True)
def _restore_factories(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in interpreter._CLIENT_MODULES:  # monkeypatch puts moto's own factory back after each test
        module = importlib.import_module(name)
        if hasattr(module, "boto_client_for"):
            monkeypatch.setattr(module, "boto_client_for", module.boto_client_for)


def test_a_task_signs_with_its_roles_session() -> None:
    sessions = FakeSessions()
    factory = interpreter.route_sdk_calls("http://127.0.0.1:4566", "AKIAIOSFODNN7EXAMPLE", "operator", sessions)
    credentials = factory("us-east-1", "sagemaker", StateCredentials(role_arn=ROLE))._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key, credentials.token) == (
        "ASIAROLESESSION00001",
        "role/secret",
        "role-token",
    )
    assert sessions.asked == [ROLE]


def test_without_a_role_the_long_term_key_signs() -> None:
    factory = interpreter.route_sdk_calls("http://127.0.0.1:4566", "AKIAIOSFODNN7EXAMPLE", "operator", FakeSessions())
    credentials = factory("us-east-1", "sagemaker", None)._request_signer._credentials
    assert (credentials.access_key, credentials.token) == ("AKIAIOSFODNN7EXAMPLE", None)
