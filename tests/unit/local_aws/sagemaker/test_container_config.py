"""How the container's environment becomes worker and batch settings, by the SageMaker PyTorch toolkit's rules."""

from __future__ import annotations

import pytest

from local_aws.sagemaker.container.config import ServingConfig, serving_config


def test_workers_default_to_the_logical_cpus_without_batching() -> None:
    assert serving_config({}, cpus=6) == ServingConfig(workers=6, batch_size=1, max_batch_delay_ms=100)


def test_model_server_workers_and_timeout() -> None:
    env = {"SAGEMAKER_MODEL_SERVER_WORKERS": "3", "SAGEMAKER_MODEL_SERVER_TIMEOUT": "9"}
    assert serving_config(env, cpus=6) == ServingConfig(workers=3, response_timeout_s=9)


def test_any_ts_knob_renders_the_models_entry_with_its_own_defaults() -> None:
    """The toolkit's models= entry: minWorkers 1 unless SAGEMAKER_TS_MIN_WORKERS, whatever the server default."""
    env = {"SAGEMAKER_MODEL_SERVER_WORKERS": "4", "SAGEMAKER_TS_BATCH_SIZE": "8"}
    assert serving_config(env, cpus=6) == ServingConfig(workers=1, batch_size=8, max_batch_delay_ms=100)
    env = {"SAGEMAKER_TS_MIN_WORKERS": "2", "SAGEMAKER_TS_MAX_WORKERS": "2", "SAGEMAKER_TS_MAX_BATCH_DELAY": "0"}
    assert serving_config(env, cpus=6) == ServingConfig(workers=2, batch_size=1, max_batch_delay_ms=0)
    assert serving_config({"SAGEMAKER_TS_RESPONSE_TIMEOUT": "5"}, cpus=6).response_timeout_s == 5
    assert serving_config({"SAGEMAKER_TS_BATCH_SIZE": ""}, cpus=6).workers == 6  # empty is unset


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SAGEMAKER_MODEL_SERVER_WORKERS": "0"}, "SAGEMAKER_MODEL_SERVER_WORKERS must be an integer >= 1, got '0'"),
        ({"SAGEMAKER_TS_BATCH_SIZE": "many"}, "SAGEMAKER_TS_BATCH_SIZE must be an integer >= 1, got 'many'"),
        ({"SAGEMAKER_TS_MAX_BATCH_DELAY": "-1"}, "SAGEMAKER_TS_MAX_BATCH_DELAY must be an integer >= 0, got '-1'"),
        (
            {"SAGEMAKER_TS_MIN_WORKERS": "3", "SAGEMAKER_TS_MAX_WORKERS": "2"},
            "SAGEMAKER_TS_MAX_WORKERS (2) is below SAGEMAKER_TS_MIN_WORKERS (3)",
        ),
    ],
)
def test_bad_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        serving_config(env, cpus=2)
