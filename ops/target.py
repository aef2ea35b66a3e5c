"""Where the operator CLI points: the deployed stack on AWS, or the local runtime. Only URLs and credentials differ.

Both targets are reached with plain boto3 clients: on ``aws`` with the user's own credential chain (profile, SSO,
environment) and AWS's endpoints; on ``local`` with the credentials the runtime issued and its one edge URL. The
stack's outputs come from ``cloudformation:DescribeStacks`` on both, so no command knows which target it talks to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

from local_aws.auth.credentials import CredentialsFileError, issue_or_load
from local_aws.cloudformation import TemplateError, samconfig_stack_name
from local_aws.constants import REGION, SAMCONFIG_PATH, StateLayout

TARGETS = ("local", "aws")


class OpsError(Exception):
    """A failure the operator can act on; printed as one line, exit status 1."""


@dataclass
class Target:
    """One deployment of the stack and how to reach it."""

    name: str
    stack_name: str
    session: boto3.session.Session
    endpoint_url: str | None = None
    api_url: str | None = None
    home: Path | None = None
    _outputs: dict[str, str] | None = field(default=None, repr=False)
    _clients: dict[tuple[str, int], Any] = field(default_factory=dict, repr=False)

    @property
    def is_local(self) -> bool:
        return self.name == "local"

    @property
    def region(self) -> str:
        return str(self.session.region_name or REGION)

    def client(self, service: str, retries: int = 5) -> Any:
        """A boto3 client for ``service`` on this target, with botocore's standard retry mode; made once per command.

        NOTE: ``watch`` asks for its clients on every poll; a new client costs ~5 ms of model loading each time.
        """
        key = (service, retries)
        if key not in self._clients:
            config = Config(retries={"max_attempts": retries, "mode": "standard"})
            self._clients[key] = self.session.client(service, endpoint_url=self.endpoint_url, config=config)
        return self._clients[key]

    def credentials(self) -> Credentials | None:
        return self.session.get_credentials()

    def outputs(self) -> dict[str, str]:
        """The stack's outputs (DescribeStacks), cached for this command."""
        if self._outputs is None:
            try:
                stacks = self.client("cloudformation").describe_stacks(StackName=self.stack_name)["Stacks"]
            except ClientError as exc:
                raise OpsError(f"stack {self.stack_name!r}: {exc.response['Error'].get('Message', exc)}") from None
            self._outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        return self._outputs

    def output(self, key: str) -> str:
        outputs = self.outputs()
        if key not in outputs:
            raise OpsError(f"stack {self.stack_name!r} has no output {key!r}; it has: {', '.join(sorted(outputs))}")
        return outputs[key]


def local_session(layout: StateLayout) -> boto3.session.Session:
    """A session with the credentials the local runtime issued (``<home>/credentials.json``)."""
    if not layout.credentials.is_file():
        raise OpsError(f"no local runtime credentials in {layout.home}; start the runtime with `python -m ops up`")
    try:
        creds = issue_or_load(layout.credentials)
    except CredentialsFileError as exc:
        raise OpsError(str(exc)) from None
    # NOTE: an explicit session, so a token or profile in the user's environment never mixes in.
    return boto3.session.Session(
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        aws_session_token=None,
        region_name=REGION,
    )


def local_target(layout: StateLayout, runtime: dict[str, Any] | None) -> Target:
    """The local runtime serving ``layout.home``.

    Raises:
        OpsError: nothing serves it.
    """
    if runtime is None:
        raise OpsError(
            f"no local runtime is serving {layout.home}; start one with `python -m ops up --serve` "
            "(or `make up`) in another shell"
        )
    return local_target_at(layout, str(runtime.get("stack")), str(runtime["aws_url"]), str(runtime["api_url"]))


def local_target_at(layout: StateLayout, stack_name: str, aws_url: str, api_url: str) -> Target:
    """The local runtime of ``layout.home`` at known URLs (the runtime in this process, or its ``runtime.json``)."""
    return Target(
        name="local",
        stack_name=stack_name,
        session=local_session(layout),
        endpoint_url=aws_url,
        api_url=api_url,
        home=layout.home,
    )


def aws_target(stack: str | None, env: str, region: str | None, profile: str | None) -> Target:
    """The stack deployed on AWS (``--stack``, else the samconfig environment's ``stack_name``).

    Raises:
        OpsError: no stack name, or no credentials.
    """
    try:
        name = stack or samconfig_stack_name(SAMCONFIG_PATH, env)
    except TemplateError as exc:
        raise OpsError(str(exc)) from None
    if not name:
        raise OpsError(f"no stack name: pass --stack, or set stack_name in samconfig.toml [{env}]")
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except BotoCoreError as exc:
        raise OpsError(str(exc)) from None
    if session.get_credentials() is None:
        raise OpsError("no AWS credentials found; configure a profile (aws configure) or pass --profile")
    return Target(name="aws", stack_name=name, session=session)
