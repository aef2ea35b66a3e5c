"""Settings and the runtime client's timeouts/retries (security checklist items 9 and 10)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import app
from config import Settings
from errors import ConfigurationError
from local_aws.cloudformation import function_property, load_template
from tests.conftest import REPO_ROOT


def function_timeout(template: Path) -> float:
    """The function's Timeout as SAM resolves it (Globals.Function merged in), read by the one template loader."""
    timeout = function_property(load_template(template), "InferenceFunction", "Timeout")
    return float(timeout if timeout is not None else 3)  # Lambda's default


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Iterator[app.Dependencies]:
    monkeypatch.setenv("ENDPOINT_NAME", "dogbreed-dev")
    monkeypatch.setattr(app, "_dependencies", None)
    deps = app.dependencies()
    yield deps
    monkeypatch.setattr(app, "_dependencies", None)


def test_runtime_client_has_explicit_timeouts_and_standard_retries(built: app.Dependencies) -> None:
    config = built.predictor._client.meta.config  # type: ignore[attr-defined]
    assert config.connect_timeout == built.settings.connect_timeout_s == 1.0
    assert config.read_timeout == built.settings.read_timeout_s == 5.0
    assert config.retries == {"mode": "standard", "total_max_attempts": 2}
    assert app.dependencies() is built  # one client per cold start, reused while warm


def test_worst_case_fits_the_function_timeout_which_fits_api_gateway(built: app.Dependencies) -> None:
    settings = built.settings
    config = built.predictor._client.meta.config  # type: ignore[attr-defined]
    # attempts × (connect + read) from the client itself, plus the worst standard-mode backoff (1 s + 5 s).
    worst = config.retries["total_max_attempts"] * (config.connect_timeout + config.read_timeout) + 6
    assert worst == settings.worst_case_seconds < settings.function_timeout_s
    template = REPO_ROOT / "template.yaml"
    if not template.exists():
        pytest.skip("template.yaml not written yet")
    lambda_timeout = function_timeout(template)
    assert settings.function_timeout_s == lambda_timeout, "FUNCTION_TIMEOUT_SECONDS default must equal the template"
    assert settings.worst_case_seconds < lambda_timeout <= 28


def test_client_honours_aws_endpoint_url_for_the_local_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "http://127.0.0.1:9999")
    monkeypatch.setenv("ENDPOINT_NAME", "dogbreed-dev")
    monkeypatch.setattr(app, "_dependencies", None)
    client = app.dependencies().predictor._client  # type: ignore[attr-defined]
    monkeypatch.setattr(app, "_dependencies", None)
    assert client.meta.endpoint_url == "http://127.0.0.1:9999"


def test_settings_from_env_reads_overrides() -> None:
    settings = Settings.from_env(
        {"ENDPOINT_NAME": " dogbreed-prod ", "MAX_TOP_K": "20", "DEFAULT_TOP_K": "3", "MAX_IMAGE_BYTES": "1024"}
    )
    assert (settings.endpoint_name, settings.max_top_k, settings.default_top_k) == ("dogbreed-prod", 20, 3)
    assert settings.max_image_bytes == 1024


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "ENDPOINT_NAME is not set"),
        ({"ENDPOINT_NAME": "e", "MAX_TOP_K": "ten"}, "MAX_TOP_K='ten' is not an integer"),
        ({"ENDPOINT_NAME": "e", "DEFAULT_TOP_K": "11"}, "DEFAULT_TOP_K=11 is outside 1..10"),
        ({"ENDPOINT_NAME": "e", "MAX_IMAGE_BYTES": "7000000"}, "MAX_IMAGE_BYTES=7000000 is outside 1..4700160"),
        ({"ENDPOINT_NAME": "e", "SAGEMAKER_READ_TIMEOUT_SECONDS": "15"}, "does not fit the 20.0 s function timeout"),
        ({"ENDPOINT_NAME": "e", "SAGEMAKER_MAX_ATTEMPTS": "0"}, "max attempts at least 1"),
    ],
)
def test_bad_settings_are_refused_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(env)
    assert message in str(info.value)
    assert info.value.message == "The service is misconfigured"
