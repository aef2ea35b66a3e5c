"""ops.target: the cloud half of the CLI (the user's credential chain, DescribeStacks outputs) and the local half
(the runtime's issued key, its one endpoint URL). Nothing here reaches AWS: Stubber answers, env vars isolate."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.stub import Stubber

from local_aws.auth.credentials import issue_or_load
from local_aws.constants import StateLayout
from ops.target import OpsError, Target, aws_target, local_session, local_target
from tests.unit.ops.ops_fakes import client, session

STACK = {
    "StackName": "dogbreed-dev",
    "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/dogbreed-dev/1",
    "CreationTime": "2025-04-09T00:00:00Z",
    "StackStatus": "CREATE_COMPLETE",
    "Outputs": [
        {"OutputKey": "StateMachineArn", "OutputValue": "arn:aws:states:us-east-1:123456789012:stateMachine:sm"},
        {"OutputKey": "EndpointName", "OutputValue": "dogbreed-dev"},
    ],
}


@pytest.fixture
def no_aws_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty AWS config: no profiles, no instance metadata, so only the environment can supply credentials."""
    config = tmp_path / "aws-config"
    config.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    return config


def _stubbed_outputs_target(monkeypatch: pytest.MonkeyPatch) -> tuple[Target, Stubber]:
    cfn = client("cloudformation")
    target = Target(name="aws", stack_name="dogbreed-dev", session=session())
    monkeypatch.setattr(target, "client", lambda service, **_: cfn)
    return target, Stubber(cfn)


def test_outputs_come_from_describe_stacks_once_per_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outputs are read with one DescribeStacks of the stack name and cached for the command."""
    target, stub = _stubbed_outputs_target(monkeypatch)
    with stub:
        stub.add_response("describe_stacks", {"Stacks": [STACK]}, {"StackName": "dogbreed-dev"})
        assert target.output("EndpointName") == "dogbreed-dev"
        assert target.outputs()["StateMachineArn"].endswith(":stateMachine:sm")
        stub.assert_no_pending_responses()  # the second read was served from the cache


def test_a_missing_output_is_named_with_the_ones_the_stack_has(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking for an output the stack lacks names it and lists the outputs there are."""
    target, stub = _stubbed_outputs_target(monkeypatch)
    with stub:
        stub.add_response("describe_stacks", {"Stacks": [STACK]}, {"StackName": "dogbreed-dev"})
        with pytest.raises(OpsError) as info:
            target.output("ApiUrl")
    assert str(info.value) == "stack 'dogbreed-dev' has no output 'ApiUrl'; it has: EndpointName, StateMachineArn"


def test_an_unknown_stack_is_an_ops_error_with_cloudformations_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """DescribeStacks' ValidationError becomes one line naming the stack."""
    target, stub = _stubbed_outputs_target(monkeypatch)
    with stub:
        stub.add_client_error("describe_stacks", "ValidationError", "Stack with id dogbreed-dev does not exist")
        with pytest.raises(OpsError, match=r"^stack 'dogbreed-dev': Stack with id dogbreed-dev does not exist$"):
            target.outputs()


def test_a_stack_without_outputs_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stack with no Outputs member has an empty output map (every output() is then a named OpsError)."""
    target, stub = _stubbed_outputs_target(monkeypatch)
    with stub:
        stub.add_response(
            "describe_stacks",
            {"Stacks": [{k: v for k, v in STACK.items() if k != "Outputs"}]},
            {"StackName": "dogbreed-dev"},
        )
        assert target.outputs() == {}


# ----------------------------------------------------------------------------------------------- aws_target
def test_aws_target_uses_the_samconfig_stack_name_and_the_users_credentials(no_aws_config: Path) -> None:
    """Without --stack the samconfig environment names the stack; credentials come from the user's chain."""
    target = aws_target(None, "prod", "eu-west-1", None)
    assert (target.name, target.stack_name, target.region) == ("aws", "dogbreed-prod", "eu-west-1")
    assert target.endpoint_url is None and not target.is_local
    credentials = target.credentials()
    assert credentials is not None and credentials.access_key == "testing"  # tests/conftest.py's environment
    sfn = target.client("stepfunctions")
    assert sfn.meta.endpoint_url == "https://states.eu-west-1.amazonaws.com"
    assert sfn.meta.config.retries == {"total_max_attempts": 6, "mode": "standard"}  # 5 retries
    assert aws_target("explicit", "dev", None, None).stack_name == "explicit"


def test_aws_target_refuses_a_missing_stack_name(
    no_aws_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --stack and no stack_name in the samconfig environment: an OpsError saying how to name one."""
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text("version = 0.1\n[dev.deploy.parameters]\nresolve_s3 = true\n")
    monkeypatch.setattr("ops.target.SAMCONFIG_PATH", samconfig)
    with pytest.raises(OpsError, match=r"no stack name: pass --stack, or set stack_name in samconfig.toml \[dev\]"):
        aws_target(None, "dev", None, None)


def test_aws_target_names_an_unknown_samconfig_environment(no_aws_config: Path) -> None:
    """An --env samconfig.toml lacks is an operator error naming the valid environments."""
    with pytest.raises(OpsError, match="valid: default, dev, prod"):
        aws_target(None, "nosuch", None, None)


def test_aws_target_refuses_missing_credentials(no_aws_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials anywhere in the chain: an OpsError that says how to configure them (no network probe)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(OpsError, match=r"no AWS credentials found; configure a profile \(aws configure\)"):
        aws_target("dogbreed-dev", "dev", None, None)


def test_aws_target_refuses_an_unknown_profile(no_aws_config: Path) -> None:
    """--profile that the AWS config lacks is botocore's message as one OpsError."""
    with pytest.raises(OpsError, match=r"The config profile \(nosuch\) could not be found"):
        aws_target("dogbreed-dev", "dev", None, "nosuch")


def test_aws_target_uses_a_named_profile(no_aws_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile's own keys and region are used (here nothing in the environment competes with them)."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    no_aws_config.write_text(
        "[profile ops]\nregion = ap-south-1\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = secret\n"
    )
    target = aws_target("dogbreed-dev", "dev", None, "ops")
    assert target.region == "ap-south-1"
    assert target.credentials().access_key == "AKIAPROFILE"  # type: ignore[union-attr]


# ----------------------------------------------------------------------------------------------- local target
def test_local_target_needs_a_serving_runtime(tmp_path: Path) -> None:
    """No runtime record: an OpsError that says how to start one."""
    with pytest.raises(OpsError, match=r"no local runtime is serving .* `python -m ops up --serve`"):
        local_target(StateLayout(tmp_path), None)


def test_local_session_needs_the_issued_credentials(tmp_path: Path) -> None:
    """Without <home>/credentials.json there is nothing to sign with."""
    with pytest.raises(OpsError, match="no local runtime credentials in"):
        local_session(StateLayout(tmp_path))


def test_local_target_signs_with_the_issued_key_only(tmp_path: Path) -> None:
    """The runtime's key, no session token (even with one in the environment), the edge URL for every client."""
    layout = StateLayout(tmp_path)
    creds = issue_or_load(layout.credentials)
    runtime = {
        "pid": 1,
        "aws_url": "http://127.0.0.1:4566",
        "api_url": "http://127.0.0.1:3000",
        "stack": "dogbreed-dev",
    }
    target = local_target(layout, runtime)
    assert (target.name, target.is_local, target.stack_name) == ("local", True, "dogbreed-dev")
    assert (target.api_url, target.home, target.region) == ("http://127.0.0.1:3000", tmp_path, "us-east-1")
    signing = target.credentials()
    assert signing is not None
    assert (signing.access_key, signing.secret_key, signing.token) == (
        creds.access_key_id,
        creds.secret_access_key,
        None,
    )
    for service in ("s3", "stepfunctions", "cloudformation", "logs"):
        assert target.client(service).meta.endpoint_url == "http://127.0.0.1:4566"


def test_a_credentials_file_others_can_read_is_refused(tmp_path: Path) -> None:
    """A credentials file with group/other permissions is not trusted (one OpsError, no traceback)."""
    layout = StateLayout(tmp_path)
    issue_or_load(layout.credentials)
    layout.credentials.chmod(0o644)
    with pytest.raises(OpsError):
        local_session(layout)
