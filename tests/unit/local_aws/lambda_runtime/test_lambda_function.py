"""local_aws.lambda_runtime.function: the function as template.yaml declares it (SAM Globals merged in)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from local_aws.lambda_runtime.function import FunctionConfigError, FunctionSpec, function_spec_from_template


def test_inference_function_of_the_repository_template(repo_root: Path) -> None:
    """Handler, CodeUri, Globals-merged Timeout/MemorySize, reserved concurrency, environment and physical name."""
    spec = function_spec_from_template("InferenceFunction", repo_root / "template.yaml")
    assert spec.handler == "app.lambda_handler"
    assert spec.code_dir == repo_root / "functions" / "inference"
    assert spec.function_name == "dogbreed-dev-inference"
    assert spec.reserved_concurrency is not None and spec.reserved_concurrency >= 1
    assert 0 < spec.timeout_s <= 29  # it must fit API Gateway's integration timeout
    assert spec.memory_mb >= 128
    assert spec.environment["ENDPOINT_NAME"] == "dogbreed-dev"
    assert all(isinstance(v, str) for v in spec.environment.values())


def test_parameter_overrides_reach_the_environment(repo_root: Path) -> None:
    """Template parameters (here EnvironmentName) flow into the resolved environment and the function name."""
    spec = function_spec_from_template("InferenceFunction", repo_root / "template.yaml", {"EnvironmentName": "qa"})
    assert spec.environment["ENDPOINT_NAME"] == "dogbreed-qa"
    assert spec.function_name == "dogbreed-qa-inference"


def test_not_a_function_names_the_functions_there_are(repo_root: Path) -> None:
    """A logical id that is not a function is refused with the list of functions."""
    with pytest.raises(FunctionConfigError, match=r"'InferenceApi' is not a function .*\['InferenceFunction'\]"):
        function_spec_from_template("InferenceApi", repo_root / "template.yaml")


def test_code_uri_that_is_not_a_local_directory_is_refused(tmp_path: Path) -> None:
    """An S3 CodeUri (a mapping) cannot be run locally."""
    template = tmp_path / "template.yaml"
    template.write_text(
        textwrap.dedent("""
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              Handler: app.handler
              CodeUri: {Bucket: b, Key: k.zip}
    """)
    )
    with pytest.raises(FunctionConfigError, match="CodeUri must be a local directory"):
        function_spec_from_template("Fn", template)


def test_lambda_defaults_apply_when_the_template_sets_nothing(tmp_path: Path) -> None:
    """No Timeout/MemorySize/concurrency: Lambda's 3 s, 128 MB, unreserved; CodeUri is relative to the template."""
    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n"
        "      Handler: app.handler\n      CodeUri: src\n      FunctionName: my-fn\n"
    )
    spec = function_spec_from_template("Fn", template)
    assert (spec.timeout_s, spec.memory_mb, spec.reserved_concurrency) == (3.0, 128, None)
    assert spec.code_dir == tmp_path / "src"
    assert spec.function_name == "my-fn"


def test_function_name_defaults_to_the_logical_id() -> None:
    """A spec built by hand without a function name uses its logical id."""
    assert FunctionSpec("Fn", "a.b", Path(".")).function_name == "Fn"
