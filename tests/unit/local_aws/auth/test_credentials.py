"""The issued key pair: created once, mode 0600 from the first instant, refused when others can read it."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from local_aws.auth import credentials as creds_mod
from local_aws.auth.credentials import (
    ChainCredentialStore,
    CredentialsFileError,
    IssuedCredentials,
    StaticCredentialStore,
    env_exports,
    issue_or_load,
)
from local_aws.constants import ACCOUNT_ID, StateLayout


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return StateLayout(tmp_path / "home").credentials


def test_issue_then_load_is_idempotent(path: Path) -> None:
    first = issue_or_load(path)
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", first.access_key_id)
    assert len(first.secret_access_key) == 40
    assert first.account_id == ACCOUNT_ID and first.user_name == "local-operator"
    assert first.principal_arn == f"arn:aws:iam::{ACCOUNT_ID}:user/local-operator"
    assert issue_or_load(path) == first
    assert json.loads(path.read_text())["access_key_id"] == first.access_key_id
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]  # no temp file left behind


def test_each_home_gets_its_own_pair(tmp_path: Path) -> None:
    assert issue_or_load(tmp_path / "a.json").access_key_id != issue_or_load(tmp_path / "b.json").access_key_id


def test_file_mode_is_0600_even_under_a_permissive_umask(path: Path) -> None:
    old = os.umask(0)
    try:
        issue_or_load(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_temp_file_is_created_exclusively_with_0600(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int]] = []
    real_open = os.open

    def spy(file: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        if flags & os.O_CREAT:
            seen.append((flags, mode))
        return real_open(file, flags, mode)

    monkeypatch.setattr(creds_mod.os, "open", spy)
    issue_or_load(path)
    assert len(seen) == 1
    flags, mode = seen[0]
    assert flags & os.O_EXCL and flags & os.O_WRONLY and mode == 0o600


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_group_or_world_readable_file_is_refused(path: Path, mode: int) -> None:
    issue_or_load(path)
    path.chmod(mode)
    with pytest.raises(CredentialsFileError, match="chmod 600"):
        issue_or_load(path)


def test_symlink_is_refused(path: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    issue_or_load(target)
    path.parent.mkdir(parents=True)
    path.symlink_to(target)
    with pytest.raises(CredentialsFileError):
        issue_or_load(path)


def test_corrupt_file_is_refused_not_replaced(path: Path) -> None:
    path.parent.mkdir(parents=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"{not json")
    os.close(fd)
    with pytest.raises(CredentialsFileError, match="not valid JSON"):
        issue_or_load(path)
    assert path.read_bytes() == b"{not json"


def test_a_concurrent_first_start_loads_the_winners_pair(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    winner = issue_or_load(path.with_name("winner.json"))
    real_link = os.link

    def lose_the_race(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        real_link(path.with_name("winner.json"), dst)  # another process linked its file first
        raise FileExistsError(dst)

    monkeypatch.setattr(creds_mod.os, "link", lose_the_race)
    assert issue_or_load(path) == winner


def test_stores() -> None:
    issued = IssuedCredentials("AKIAIOSFODNN7EXAMPLE", "s" * 40, ACCOUNT_ID, "arn:aws:iam::1:user/u", "u")
    chain = ChainCredentialStore(StaticCredentialStore(), StaticCredentialStore(issued))
    assert chain.lookup("AKIAIOSFODNN7EXAMPLE") == issued.identity()
    assert chain.lookup("AKIAOTHER00000000000") is None
    assert "s" * 40 not in repr(issued) and "s" * 40 not in repr(issued.identity())


def test_env_exports_are_quoted_for_the_shell() -> None:
    issued = IssuedCredentials("AKIAIOSFODNN7EXAMPLE", "ab+/cd'ef" + "x" * 31, ACCOUNT_ID, "arn", "u")
    urls = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:4566/?a=1&b=$x"}
    lines = env_exports(issued, urls)
    assert lines[0] == "unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN"
    assert lines[1:5] == [
        "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        f"export AWS_SECRET_ACCESS_KEY={shlex.quote(issued.secret_access_key)}",
        "export AWS_DEFAULT_REGION=us-east-1",
        "export AWS_REGION=us-east-1",
    ]
    assert lines[5:] == [
        "export AWS_ENDPOINT_URL=http://127.0.0.1:4566",
        "export AWS_ENDPOINT_URL_S3='http://127.0.0.1:4566/?a=1&b=$x'",
    ]
    # What a shell makes of the lines is exactly the values (quotes, $ and & included).
    script = "\n".join([*lines, 'printf "%s\\n" "$AWS_SECRET_ACCESS_KEY" "$AWS_ENDPOINT_URL_S3"'])
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [issued.secret_access_key, urls["AWS_ENDPOINT_URL_S3"]]


def test_env_exports_refuse_other_variable_names() -> None:
    issued = IssuedCredentials("AKIAIOSFODNN7EXAMPLE", "x" * 40, ACCOUNT_ID, "arn", "u")
    with pytest.raises(ValueError, match="AWS_ENDPOINT_URL"):
        env_exports(issued, {"PATH": "/tmp"})


def test_fifo_is_refused_without_hanging(path: Path) -> None:
    path.parent.mkdir(parents=True)
    os.mkfifo(path, 0o600)
    with pytest.raises(CredentialsFileError, match="not a regular file"):
        issue_or_load(path)
