"""A running local AWS for integration tests: in this process, on ephemeral ports, in a temp home.

moto's backends are process-global, so one ``LocalAws`` serves the whole session (``local_aws`` fixture); tests that
need a real restart run the runtime in a subprocess instead (``ops up --serve``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from local_aws.constants import REGION
from local_aws.server import LocalAws


@dataclass
class Aws:
    """Clients on a running local AWS, signed with the credentials it issued."""

    runtime: LocalAws
    home: Path

    @property
    def url(self) -> str:
        return self.runtime.endpoints.aws_url

    @property
    def api_url(self) -> str:
        return self.runtime.endpoints.api_url

    def session(self) -> boto3.session.Session:
        creds = self.runtime.credentials
        assert creds is not None
        return boto3.session.Session(
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=None,
            region_name=REGION,
        )

    def client(self, service: str, retries: int = 1, **config: Any) -> Any:
        return self.session().client(
            service,
            endpoint_url=self.url,
            config=Config(retries={"max_attempts": retries, "mode": "standard"}, **config),
        )

    def output(self, key: str) -> str:
        stack = self.runtime.stack
        assert stack is not None
        if key == "ApiUrl":
            return self.api_url
        return stack.outputs[key]


def start_local_aws(home: Path) -> Iterator[Aws]:
    """Start one local AWS (ports 0), yield its clients, stop it."""
    with pytest.MonkeyPatch.context() as mp:
        # Training jobs and endpoint instances inherit this process's environment: one thread each on 2 cores.
        mp.setenv("OMP_NUM_THREADS", "1")
        runtime = LocalAws(home, aws_port=0, api_port=0).start()
        try:
            yield Aws(runtime, home)
        finally:
            runtime.stop()
