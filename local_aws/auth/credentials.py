"""The access key pair the local AWS issues, where it is kept, and the stores the SigV4 verifier looks keys up in.

The runtime issues one long-term key pair per home dir (``StateLayout(home).credentials``), the way IAM issues an
access key to a user: an ``AKIA`` key id and a 40-character secret. The file is created atomically with mode 0600 and
is refused when group or other may read it, because the secret is as good as the user's shell for every local service.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import stat
import string
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from local_aws.constants import ACCOUNT_ID, PARTITION, REGION

USER_NAME = "local-operator"
# IAM access key ids of long-term user keys are "AKIA" + 16 characters of [A-Z0-9]
# (docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids); the secret is
# 40 characters of the base64 alphabet (botocore's model: SecretAccessKey, and every key the console shows).
_KEY_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
_KEY_ID_RE = re.compile(r"AKIA[A-Z0-9]{16}")
_SECRET_RE = re.compile(r"[A-Za-z0-9+/]{40}")
_ENDPOINT_VAR_RE = re.compile(r"AWS_ENDPOINT_URL(_[A-Z0-9_]+)?")


class CredentialsFileError(RuntimeError):
    """The credentials file exists but cannot be trusted or read (wrong mode, not a file, corrupt)."""


@dataclass(frozen=True)
class Identity:
    """Who a key belongs to, as a credential store answers for one access key id.

    Attributes:
        access_key_id: The key id the request named in its credential scope.
        secret_access_key: The secret the signature is recomputed with (never printed).
        account_id: The 12-digit account the principal lives in.
        principal_arn: The IAM user or assumed-role session ARN.
        session_token: Temporary credentials' token; a request signed with such a key must carry it.
        expiration: When temporary credentials expire (UTC); None for long-term keys.
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    account_id: str
    principal_arn: str
    session_token: str | None = field(default=None, repr=False)
    expiration: datetime | None = None


@dataclass(frozen=True)
class IssuedCredentials:
    """The long-term key pair the runtime issued to the local operator.

    Attributes:
        access_key_id: ``AKIA`` + 16 uppercase alphanumerics.
        secret_access_key: 40 characters from ``secrets`` (never printed).
        account_id: The local account, ``constants.ACCOUNT_ID``.
        principal_arn: ``arn:aws:iam::<account>:user/<user_name>``.
        user_name: The IAM user name the key belongs to.
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    account_id: str
    principal_arn: str
    user_name: str

    def identity(self) -> Identity:
        """The identity a credential store answers for this key (long-term keys carry no session token)."""
        return Identity(self.access_key_id, self.secret_access_key, self.account_id, self.principal_arn)


def new_credentials(*, account_id: str = ACCOUNT_ID, user_name: str = USER_NAME) -> IssuedCredentials:
    """Draw a fresh key pair from ``secrets`` (not persisted; ``issue_or_load`` persists).

    Args:
        account_id: The account the user belongs to.
        user_name: The IAM user name.

    Returns:
        A new, random key pair for ``arn:aws:iam::<account_id>:user/<user_name>``.
    """
    key_id = "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    arn = f"arn:{PARTITION}:iam::{account_id}:user/{user_name}"
    return IssuedCredentials(key_id, secret, account_id, arn, user_name)


def issue_or_load(path: Path) -> IssuedCredentials:
    """Load the key pair kept at ``path``, issuing (and storing) one the first time.

    The file is written to a temporary name opened with ``O_CREAT | O_EXCL`` and mode 0600, so it is never readable
    by anyone else, not even for an instant, and then linked into place; ``link`` fails when another process won the
    race, and then that process's pair is loaded, so concurrent first starts agree on one key.

    Args:
        path: Where the pair lives, normally ``StateLayout(home).credentials``.

    Returns:
        The issued credentials.

    Raises:
        CredentialsFileError: The file allows group/other access, is not a regular file, or is corrupt.
    """
    try:
        return _load(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    creds = new_credentials()
    payload = asdict(creds)  # every field, in declaration order: the file's keys
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _load(path)  # another process issued first: use its pair, so everyone agrees
        except OSError:
            # A filesystem without hard links: rename is still atomic, only the first-start race is lost.
            tmp.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return creds


def _load(path: Path) -> IssuedCredentials:
    # O_NOFOLLOW + fstat: the mode checked is the mode of the very file read (no symlink swap in between);
    # O_NONBLOCK: a FIFO planted at the path cannot hang the start (it is then refused as not a regular file).
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:  # ELOOP: a symlink, which could point anywhere
        raise CredentialsFileError(f"{path} cannot be opened as a plain file: {exc}") from exc
    with os.fdopen(fd, "r", encoding="utf-8") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise CredentialsFileError(f"{path} is not a regular file")
        if st.st_mode & 0o077:
            raise CredentialsFileError(
                f"{path} has mode {stat.S_IMODE(st.st_mode):04o}, which lets group/other read the secret access key; "
                f"run `chmod 600 {path}` (or delete it to issue a new key pair)"
            )
        try:
            raw = json.load(fh)
        except ValueError as exc:
            raise CredentialsFileError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise CredentialsFileError(f"{path} does not hold a JSON object")
    try:
        creds = IssuedCredentials(
            access_key_id=str(raw["access_key_id"]),
            secret_access_key=str(raw["secret_access_key"]),
            account_id=str(raw["account_id"]),
            principal_arn=str(raw["principal_arn"]),
            user_name=str(raw["user_name"]),
        )
    except KeyError as exc:
        raise CredentialsFileError(f"{path} lacks the field {exc.args[0]!r}") from exc
    if not _KEY_ID_RE.fullmatch(creds.access_key_id) or not _SECRET_RE.fullmatch(creds.secret_access_key):
        raise CredentialsFileError(f"{path} holds a malformed key pair; delete it to issue a new one")
    return creds


class CredentialStore(Protocol):
    """Answers who an access key id belongs to; the SigV4 verifier's only view of credentials."""

    def lookup(self, access_key_id: str) -> Identity | None:
        """The identity for ``access_key_id``, or None when the key is unknown to this store."""
        ...


class StaticCredentialStore:
    """A store holding fixed identities: the runtime's issued long-term pair (and, in tests, any others)."""

    def __init__(self, *identities: Identity | IssuedCredentials) -> None:
        """Hold ``identities`` (an ``IssuedCredentials`` is stored as its ``identity()``)."""
        self._by_key: dict[str, Identity] = {}
        for item in identities:
            ident = item.identity() if isinstance(item, IssuedCredentials) else item
            self._by_key[ident.access_key_id] = ident

    def lookup(self, access_key_id: str) -> Identity | None:
        """The identity for ``access_key_id``, or None."""
        return self._by_key.get(access_key_id)


class ChainCredentialStore:
    """Tries several stores in order (the issued pair first, then e.g. STS temporary credentials)."""

    def __init__(self, *stores: CredentialStore) -> None:
        """Ask ``stores`` in the order given; the first that knows the key answers."""
        self._stores = tuple(stores)

    def lookup(self, access_key_id: str) -> Identity | None:
        """The first store's identity for ``access_key_id``, or None when no store knows it."""
        for store in self._stores:
            found = store.lookup(access_key_id)
            if found is not None:
                return found
        return None


def env_exports(creds: IssuedCredentials, urls: Mapping[str, str], *, region: str = REGION) -> list[str]:
    """The shell lines a user pastes to point the AWS CLI and SDKs at the local runtime.

    A leftover ``AWS_SESSION_TOKEN`` from a real AWS session would be sent along with the local key and refused
    (a long-term key carries no token), so the first line unsets it and its legacy alias.

    Args:
        creds: The issued key pair.
        urls: ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` variable names mapped to URLs, in output order.
        region: The runtime's region, exported as both ``AWS_DEFAULT_REGION`` (CLI v1, boto3) and ``AWS_REGION``.

    Returns:
        ``unset ...`` followed by ``export NAME=value`` lines, every value quoted with ``shlex.quote``.

    Raises:
        ValueError: A name in ``urls`` is not an ``AWS_ENDPOINT_URL*`` variable.
    """
    lines = ["unset AWS_SESSION_TOKEN AWS_SECURITY_TOKEN"]
    pairs: list[tuple[str, str]] = [
        ("AWS_ACCESS_KEY_ID", creds.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key),
        ("AWS_DEFAULT_REGION", region),
        ("AWS_REGION", region),
    ]
    for name, url in urls.items():
        if not _ENDPOINT_VAR_RE.fullmatch(name):
            raise ValueError(f"{name!r} is not an AWS_ENDPOINT_URL[_SERVICE] variable")
        pairs.append((name, url))
    lines.extend(f"export {name}={shlex.quote(value)}" for name, value in pairs)
    return lines
