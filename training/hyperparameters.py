"""The hyperparameter and path contract of train.py: ``--key value`` as the SageMaker training toolkit renders it.

Every option takes ``--kebab-case`` and ``--snake_case``; paths and the cluster layout default to the SM_* environment
(CONTRACTS.md §2). A bad value is refused naming it and the valid ones, and the message also goes to SageMaker's
failure file, so it becomes the job's FailureReason.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch

from data import AUGMENTATIONS
from model import ARCHS

LOGGER = logging.getLogger("train")
DESCRIPTION = "Train the dog-breed classifier (SageMaker, EC2 torchrun or local: the same file)."
BOOL_TRUE = ("true", "1", "yes")
BOOL_FALSE = ("false", "0", "no")
# Written to metadata.json under "hyperparameters" with the keys the ASL/HPO use.
HYPERPARAMETERS = (
    "arch",
    "epochs",
    "batch_size",
    "learning_rate",
    "momentum",
    "weight_decay",
    "image_size",
    "pretrained",
    "augment",
    "freeze_backbone",
    "patience",
    "max_steps",
    "dry_run",
    "seed",
    "num_workers",
)
FAILURE_MAX_CHARS = 1024


def _env(name: str, fallback: str) -> str:
    return os.environ.get(name, fallback)


def _default_output_dir() -> str:
    return _env("SM_OUTPUT_DIR", "/opt/ml/output" if Path("/opt/ml/output").is_dir() else "output")


def write_failure(output_dir: str | Path, reason: str) -> None:
    """Write the SageMaker failure file (its first 1024 chars become the job's FailureReason)."""
    try:
        path = Path(output_dir)
        path.mkdir(parents=True, exist_ok=True)
        (path / "failure").write_text(reason[:FAILURE_MAX_CHARS] + "\n")
    except OSError as exc:  # never mask the original failure
        LOGGER.error("could not write failure file in %s: %s", output_dir, exc)


def str2bool(value: str | bool) -> bool:
    """Parse SageMaker-rendered booleans (``True``/``False``) and the usual spellings."""
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in BOOL_TRUE:
        return True
    if lowered in BOOL_FALSE:
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {value!r} (valid: True, False, true, false, 1, 0, yes, no)")


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = float(value)
            if not number.is_integer():
                raise ValueError
            result = int(number)  # HPO may render integer ranges as "10.0"
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid integer {value!r} (expected an integer >= {minimum})") from None
        if result < minimum:
            raise argparse.ArgumentTypeError(f"invalid value {value!r} (expected an integer >= {minimum})")
        return result

    return parse


def _float_in(low: float, high: float | None, low_inclusive: bool = True) -> Callable[[str], float]:
    def parse(value: str) -> float:
        bound = f"{'>=' if low_inclusive else '>'} {low}" + (f" and < {high}" if high is not None else "")
        try:
            result = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid number {value!r} (expected a number {bound})") from None
        ok = (result >= low if low_inclusive else result > low) and (high is None or result < high)
        if not ok or result != result:  # NaN fails every comparison
            raise argparse.ArgumentTypeError(f"invalid value {value!r} (expected a number {bound})")
        return result

    return parse


def _choice(valid: Sequence[str]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in valid:
            raise argparse.ArgumentTypeError(f"invalid choice {value!r} (valid: {', '.join(valid)})")
        return value

    return parse


def _pretrained(value: str) -> str:
    if value in ("auto", "none"):
        return value
    if not value:
        raise argparse.ArgumentTypeError("invalid value '' (valid: auto, none, or a path to a .pth file)")
    return value


def _hosts(value: str) -> list[str]:
    try:
        parsed = json.loads(value) if value.strip().startswith("[") else [h for h in value.split(",") if h]
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(f'invalid hosts {value!r} (expected a JSON list like ["algo-1"])') from None
    if not isinstance(parsed, list) or not all(isinstance(h, str) for h in parsed):
        raise argparse.ArgumentTypeError(f"invalid hosts {value!r} (expected a JSON list of host names)")
    return parsed


class _Parser(argparse.ArgumentParser):
    """Argument parser whose errors also land in the SageMaker failure file."""

    def error(self, message: str) -> NoReturn:
        write_failure(_default_output_dir(), f"bad hyperparameter: {message}")
        super().error(message)


def _add(parser: argparse._ActionsContainer, name: str, **kwargs: Any) -> None:
    # Every option accepts --kebab-case and --snake_case (CONTRACTS.md §2).
    flags = [f"--{name}"]
    if "-" in name:
        flags.append(f"--{name.replace('-', '_')}")
    parser.add_argument(*flags, dest=kwargs.pop("dest", name.replace("-", "_")), **kwargs)


def get_args_parser() -> argparse.ArgumentParser:
    """Parser for hyperparameters and SageMaker paths; defaults are read from the SM_* env at call time."""
    parser = _Parser(description=DESCRIPTION, allow_abbrev=False)
    hp = parser.add_argument_group("hyperparameters")
    _add(hp, "arch", type=_choice(ARCHS), default="resnet50", help=f"one of {', '.join(ARCHS)}")
    _add(hp, "epochs", type=_int_at_least(1), default=10)
    _add(hp, "batch-size", type=_int_at_least(1), default=32, help="per process")
    hp.add_argument(
        "--learning-rate", "--learning_rate", "--lr", dest="learning_rate", type=_float_in(0, None, False), default=1e-3
    )
    _add(hp, "momentum", type=_float_in(0, 1), default=0.9)
    _add(hp, "weight-decay", type=_float_in(0, None), default=1e-4)
    _add(hp, "image-size", type=_int_at_least(8), default=224)
    _add(hp, "pretrained", type=_pretrained, default="auto", help="auto, none, or a path to a .pth state_dict")
    _add(hp, "augment", type=_choice(AUGMENTATIONS), default="flip", help="train-split augmentation")
    _add(hp, "freeze-backbone", type=str2bool, default=False)
    _add(hp, "patience", type=_int_at_least(0), default=3, help="epochs without valid-loss improvement; 0 = off")
    _add(hp, "max-steps", type=_int_at_least(0), default=0, help="cap on optimizer steps per epoch; 0 = no cap")
    _add(hp, "dry-run", type=str2bool, default=False, help="one batch per split, one epoch")
    _add(hp, "seed", type=_int_at_least(0), default=42)
    _add(hp, "num-workers", type=_int_at_least(0), default=2)
    default_ckpt = "/opt/ml/checkpoints" if Path("/opt/ml/checkpoints").is_dir() else ""
    _add(hp, "checkpoint-dir", default=default_ckpt, help="per-epoch checkpoints and resume; empty = off")
    _add(hp, "record-shards", type=str2bool, default=False, help="write each rank's sample indices per epoch")

    env = parser.add_argument_group("SageMaker environment (defaults from SM_*)")
    _add(env, "model-dir", default=_env("SM_MODEL_DIR", "model"))
    _add(env, "output-data-dir", default=_env("SM_OUTPUT_DATA_DIR", str(Path("output") / "data")))
    _add(env, "output-dir", default=_default_output_dir())
    _add(env, "data-dir", default=os.environ.get("SM_CHANNEL_TRAINING"), help="channel holding train/ valid/ test/")
    _add(env, "train-dir", default=os.environ.get("SM_CHANNEL_TRAIN"))
    _add(env, "valid-dir", default=os.environ.get("SM_CHANNEL_VALID"))
    _add(env, "test-dir", default=os.environ.get("SM_CHANNEL_TEST"))
    _add(env, "weights-dir", default=os.environ.get("SM_CHANNEL_WEIGHTS"))
    _add(env, "hosts", type=_hosts, default=_hosts(_env("SM_HOSTS", "[]")))
    _add(env, "current-host", default=_env("SM_CURRENT_HOST", ""))
    _add(env, "num-gpus", type=_int_at_least(0), default=int(_env("SM_NUM_GPUS", str(torch.cuda.device_count()))))
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``; unknown options are an error naming them (toolkit-internal ``sagemaker_*`` keys excepted)."""
    parser = get_args_parser()
    args, unknown = parser.parse_known_args(argv)
    bad = [u for u in unknown if u.startswith("-") and not u.lstrip("-").startswith(("sagemaker_", "_tuning"))]
    if bad:
        valid = sorted({s for a in parser._actions for s in a.option_strings if s.startswith("--") and "_" not in s})
        parser.error(f"unknown hyperparameter(s) {', '.join(bad)} (valid: {', '.join(valid)})")
    return args
