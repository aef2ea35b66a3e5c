"""Hyperparameter parsing: SM_* defaults, SageMaker's --key value rendering, both spellings, bad values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hyperparameters
import train


def toolkit_render(hyperparameters: dict[str, str]) -> list[str]:
    """What sagemaker-training's mapping does: json.loads each value (raw on failure), str() it, sorted --key value."""
    argv: list[str] = []
    for key in sorted(hyperparameters):
        raw = hyperparameters[key]
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        argv += [f"--{key}", str(value)]
    return argv


def test_defaults_come_from_sm_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("SM_CHANNEL_TRAINING", str(tmp_path / "data"))
    monkeypatch.setenv("SM_HOSTS", '["algo-1","algo-2"]')
    monkeypatch.setenv("SM_CURRENT_HOST", "algo-2")
    monkeypatch.setenv("SM_NUM_GPUS", "4")
    args = hyperparameters.parse_args([])
    assert args.model_dir == str(tmp_path / "model")
    assert args.output_data_dir == str(tmp_path / "out")
    assert args.data_dir == str(tmp_path / "data")
    assert args.hosts == ["algo-1", "algo-2"] and args.current_host == "algo-2" and args.num_gpus == 4
    assert (args.arch, args.epochs, args.batch_size, args.learning_rate) == ("resnet50", 10, 32, 0.001)
    assert (args.image_size, args.pretrained, args.freeze_backbone, args.patience) == (224, "auto", False, 3)


def test_local_fallbacks_without_sm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR", "SM_CHANNEL_TRAINING", "SM_HOSTS", "SM_CURRENT_HOST"):
        monkeypatch.delenv(var, raising=False)
    args = hyperparameters.parse_args([])
    assert args.model_dir == "model" and args.data_dir is None and args.hosts == []


def test_cli_overrides_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SM_MODEL_DIR", "/from/env")
    assert hyperparameters.parse_args(["--model-dir", "/from/cli"]).model_dir == "/from/cli"


def test_sagemaker_rendering_round_trip() -> None:
    # The SDK json.dumps every value; the ASL sends plain strings. Both must parse to the same thing.
    sdk = {
        "arch": '"resnet18"',
        "epochs": "3",
        "batch-size": "16",
        "learning-rate": "0.01",
        "freeze-backbone": "true",
        "dry-run": "false",
        "weight-decay": "1e-05",
        "max-steps": "5",
        "image-size": "64",
    }
    asl = {k: v.strip('"') for k, v in sdk.items()}
    for hps in (sdk, asl):
        args = hyperparameters.parse_args(toolkit_render(hps))
        assert args.arch == "resnet18" and args.epochs == 3 and args.batch_size == 16
        assert args.learning_rate == 0.01 and args.weight_decay == 1e-5 and args.max_steps == 5
        assert args.freeze_backbone is True and args.dry_run is False and args.image_size == 64


@pytest.mark.parametrize("flag", ["--batch-size", "--batch_size"])
def test_kebab_and_snake_case(flag: str) -> None:
    assert hyperparameters.parse_args([flag, "8"]).batch_size == 8


@pytest.mark.parametrize(("value", "expected"), [("True", True), ("false", False), ("1", True), ("0", False)])
def test_booleans(value: str, expected: bool) -> None:
    assert hyperparameters.parse_args(["--dry-run", value]).dry_run is expected


def test_lr_alias_and_integral_float() -> None:
    args = hyperparameters.parse_args(["--lr", "0.5", "--epochs", "10.0"])
    assert args.learning_rate == 0.5 and args.epochs == 10


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--arch", "resnet51"], ["'resnet51'", "resnet18", "smallcnn"]),
        (["--dry-run", "maybe"], ["'maybe'", "True", "false"]),
        (["--epochs", "0"], ["'0'", ">= 1"]),
        (["--epochs", "ten"], ["'ten'", "integer"]),
        (["--learning-rate", "-1"], ["'-1'", "> 0"]),
        (["--momentum", "1.5"], ["'1.5'", "< 1"]),
        (["--image-size", "4"], ["'4'", ">= 8"]),
        (["--augment", "mixup"], ["'mixup'", "flip", "crop", "none"]),
        (["--lerning-rate", "0.1"], ["--lerning-rate", "--learning-rate"]),
    ],
)
def test_bad_values_name_the_value_and_the_valid_ones(
    argv: list[str],
    fragments: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as info:
        hyperparameters.parse_args(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    failure = (tmp_path / "failure").read_text()
    assert failure.startswith("bad hyperparameter:") and fragments[0] in failure


def test_toolkit_internal_keys_are_ignored() -> None:
    args = hyperparameters.parse_args(["--sagemaker_program", "train.py", "--epochs", "2"])
    assert args.epochs == 2


def test_runtime_failure_writes_reason_and_reraises(tmp_path: Path) -> None:
    args = hyperparameters.parse_args(
        ["--data-dir", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "output"), "--arch", "smallcnn"]
    )
    with pytest.raises(ValueError, match="does not exist"):
        train.main(args)
    reason = (tmp_path / "output" / "failure").read_text()
    assert reason.startswith("ValueError:") and "missing" in reason
