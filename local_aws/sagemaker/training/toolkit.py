"""What the SageMaker training toolkit computes inside the container, as pure functions.

Mirrors ``sagemaker_training.environment`` / ``mapping`` / ``params`` (see sagemaker-contract.md §1), with one local
twist: every ``/opt/ml`` path is relocated under a per-host base directory, as ``SAGEMAKER_BASE_DIR`` does.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Keys the toolkit removes from user hyperparameters (params.py); any other sagemaker_* key becomes a framework param.
SAGEMAKER_HPS = frozenset(
    {
        "sagemaker_program",
        "sagemaker_submit_directory",
        "sagemaker_enable_cloudwatch_metrics",
        "sagemaker_region",
        "sagemaker_container_log_level",
        "sagemaker_job_name",
        "default_user_module_name",
        "_tuning_objective_metric",
        "sagemaker_s3_output",
    }
)
DISTRIBUTION_KEYS = (
    "sagemaker_mpi_enabled",
    "sagemaker_pytorch_ddp_enabled",
    "sagemaker_torch_distributed_enabled",
    "sagemaker_distributed_dataparallel_enabled",
    "sagemaker_pytorch_xla_multi_worker_enabled",
    "sagemaker_parameter_server_enabled",
    "sagemaker_multi_worker_mirrored_strategy_enabled",
)
OPT_ML = "/opt/ml"


def decode_hyperparameters(raw: dict[str, str]) -> dict[str, Any]:
    """JSON-decode every value, falling back to the raw string (``environment._read_hyperparameters``)."""
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            decoded[key] = json.loads(value)
        except (TypeError, ValueError):
            decoded[key] = value
    return decoded


def split_hyperparameters(decoded: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Split into (user HPs, sagemaker HPs, additional framework params) the way ``params.py`` does."""
    user: dict[str, Any] = {}
    sagemaker: dict[str, Any] = {}
    framework: dict[str, Any] = {}
    for key, value in decoded.items():
        if key in SAGEMAKER_HPS:
            sagemaker[key] = value
        elif key.startswith("sagemaker_"):
            framework[key] = value
        else:
            user[key] = value
    return user, sagemaker, framework


def to_cmd_args(hyperparameters: dict[str, Any]) -> list[str]:
    """Render user hyperparameters as CLI args exactly like ``mapping.to_cmd_args``.

    Keys are sorted; ``--key value`` (``-k`` for one-char keys); dict values become ``k1=v1,k2=v2``; every other value
    goes through ``str()`` (so JSON ``true`` arrives as ``True``).
    """
    args: list[str] = []
    for key in sorted(hyperparameters):
        name = str(key)
        args.append(f"--{name}" if len(name) > 1 else f"-{name}")
        value = hyperparameters[key]
        if isinstance(value, dict):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append(str(value))
    return args


def format_env_value(value: Any) -> str:
    """``mapping.to_env_vars`` value rule: strings raw, None empty, anything else compact sorted JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def relocate(value: str, base: Path) -> str:
    """Rewrite an ``/opt/ml/...`` path into the host's base dir (no-op for anything else)."""
    if value == OPT_ML or value.startswith(OPT_ML + "/"):
        return str(base) + value[len(OPT_ML) :]
    return value


def is_truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def distribution_enabled(framework: dict[str, Any], key: str) -> bool:
    return is_truthy(framework.get(key))


def resource_config(current_host: str, hosts: list[str], instance_type: str) -> dict[str, Any]:
    """``input/config/resourceconfig.json`` as the service writes it for a homogeneous cluster."""
    return {
        "current_host": current_host,
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": sorted(hosts),
        "instance_groups": [
            {"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": sorted(hosts)}
        ],
        "network_interface_name": "eth0",
    }


def input_data_config(channels: list[dict[str, Any]]) -> dict[str, Any]:
    """``input/config/inputdataconfig.json`` from CreateTrainingJob ``InputDataConfig``."""
    config: dict[str, Any] = {}
    for channel in channels:
        s3 = channel.get("DataSource", {}).get("S3DataSource", {})
        mode = channel.get("InputMode") or "File"
        entry: dict[str, Any] = {
            # FastFile is presented to the container as File.
            "TrainingInputMode": "File" if mode == "FastFile" else mode,
            "S3DistributionType": s3.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
        if channel.get("ContentType"):
            entry["ContentType"] = channel["ContentType"]
        config[channel["ChannelName"]] = entry
    return config


def num_gpus() -> int:
    """Count GPUs like the toolkit: lines of ``nvidia-smi --list-gpus`` (0 without the tool)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return 0
    try:
        out = subprocess.run([exe, "--list-gpus"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return len([line for line in out.splitlines() if line.strip()])


@dataclass(frozen=True)
class HostLayout:
    """The /opt/ml tree of one host, relocated under ``base``."""

    base: Path

    @property
    def code(self) -> Path:
        return self.base / "code"

    @property
    def model(self) -> Path:
        return self.base / "model"

    @property
    def input(self) -> Path:
        return self.base / "input"

    @property
    def input_config(self) -> Path:
        return self.base / "input" / "config"

    @property
    def data(self) -> Path:
        return self.base / "input" / "data"

    @property
    def output(self) -> Path:
        return self.base / "output"

    @property
    def output_data(self) -> Path:
        return self.base / "output" / "data"

    @property
    def output_intermediate(self) -> Path:
        return self.base / "output" / "intermediate"

    @property
    def failure(self) -> Path:
        return self.base / "output" / "failure"

    def create(self) -> None:
        for d in (self.code, self.model, self.input_config, self.data, self.output_data, self.output_intermediate):
            d.mkdir(parents=True, exist_ok=True)


def training_env(
    layout: HostLayout,
    *,
    job_name: str,
    current_host: str,
    hosts: list[str],
    instance_type: str,
    raw_hyperparameters: dict[str, str],
    channels: list[dict[str, Any]],
    gpus: int,
) -> dict[str, str]:
    """Every ``SM_*`` variable the toolkit exports to the user script (``environment.to_env_vars``).

    Args:
        layout: the host's relocated /opt/ml tree.
        job_name: the training job name.
        current_host: ``algo-N``.
        hosts: all hosts of the job.
        instance_type: ResourceConfig.InstanceType.
        raw_hyperparameters: CreateTrainingJob HyperParameters (string → string).
        channels: CreateTrainingJob InputDataConfig.
        gpus: GPUs visible to the host.

    Returns:
        The ``SM_*`` environment (all values strings).
    """
    decoded = decode_hyperparameters(raw_hyperparameters)
    user_hps, sm_hps, framework = split_hyperparameters(decoded)
    user_args = [relocate(a, layout.base) for a in to_cmd_args(user_hps)]
    hosts = sorted(hosts)
    channel_names = sorted(c["ChannelName"] for c in channels)
    channel_dirs = {name: str(layout.data / name) for name in channel_names}
    rc = resource_config(current_host, hosts, instance_type)
    idc = input_data_config(channels)
    program = str(sm_hps.get("sagemaker_program") or "")
    module_name = program[:-3] if program.endswith(".py") else program
    distributed = any(is_truthy(framework.get(k)) for k in DISTRIBUTION_KEYS)
    log_level = int(sm_hps.get("sagemaker_container_log_level") or 20)
    groups = rc["instance_groups"]
    properties: dict[str, Any] = {
        "additional_framework_parameters": framework,
        "channel_input_dirs": channel_dirs,
        "current_host": current_host,
        "current_instance_group": "homogeneousCluster",
        "current_instance_group_hosts": hosts,
        "current_instance_type": instance_type,
        "distribution_hosts": hosts if distributed else [],
        "distribution_instance_groups": ["homogeneousCluster"] if distributed else [],
        "framework_module": "sagemaker_pytorch_container.training:main",
        "hosts": hosts,
        "hyperparameters": user_hps,
        "input_config_dir": str(layout.input_config),
        "input_data_config": idc,
        "input_dir": str(layout.input),
        "instance_groups": ["homogeneousCluster"],
        "instance_groups_dict": {g["instance_group_name"]: g for g in groups},
        "is_hetero": False,
        "is_master": current_host == hosts[0],
        "is_modelparallel_enabled": None,
        "is_smddpmprun_installed": False,
        "is_smddprun_installed": False,
        "job_name": job_name,
        "log_level": log_level,
        "master_hostname": hosts[0],
        "model_dir": str(layout.model),
        "module_dir": str(layout.code),
        "module_name": module_name,
        "network_interface_name": "eth0",
        "num_cpus": multiprocessing.cpu_count(),
        "num_gpus": gpus,
        "num_neurons": 0,
        "output_data_dir": str(layout.output_data),
        "output_dir": str(layout.output),
        "output_intermediate_dir": str(layout.output_intermediate),
        "resource_config": rc,
        "user_entry_point": program,
    }
    env_props: dict[str, Any] = {
        "hosts": hosts,
        "network_interface_name": "eth0",
        "hps": user_hps,
        "resource_config": rc,
        "input_data_config": idc,
        "output_data_dir": str(layout.output_data),
        "channels": channel_names,
        "current_host": current_host,
        "current_instance_type": instance_type,
        "current_instance_group": "homogeneousCluster",
        "current_instance_group_hosts": hosts,
        "instance_groups": ["homogeneousCluster"],
        "instance_groups_dict": properties["instance_groups_dict"],
        "distribution_instance_groups": properties["distribution_instance_groups"],
        "is_hetero": False,
        "module_name": module_name,
        "log_level": log_level,
        "framework_module": properties["framework_module"],
        "input_dir": str(layout.input),
        "input_config_dir": str(layout.input_config),
        "output_dir": str(layout.output),
        "num_cpus": properties["num_cpus"],
        "num_gpus": gpus,
        "num_neurons": 0,
        "model_dir": str(layout.model),
        "module_dir": str(layout.code),
        "training_env": properties,
        "user_args": user_args,
        "output_intermediate_dir": str(layout.output_intermediate),
        "framework_params": framework,
        "user_entry_point": program,
    }
    for name, path in channel_dirs.items():
        env_props[f"channel_{name}"] = path
    for key, value in user_hps.items():
        env_props[f"hp_{key}"] = value
    return {f"SM_{key.upper()}": format_env_value(value) for key, value in env_props.items()}


def write_input_config(
    layout: HostLayout,
    current_host: str,
    hosts: list[str],
    instance_type: str,
    raw_hyperparameters: dict[str, str],
    channels: list[dict[str, Any]],
) -> None:
    """The three files the service writes under ``input/config`` before the container starts."""
    config = layout.input_config
    (config / "hyperparameters.json").write_text(json.dumps(raw_hyperparameters))
    (config / "resourceconfig.json").write_text(json.dumps(resource_config(current_host, hosts, instance_type)))
    (config / "inputdataconfig.json").write_text(json.dumps(input_data_config(channels)))


def container_home(layout: HostLayout) -> dict[str, str]:
    """HOME and the usual cache variables inside the host's own tree.

    NOTE: a container has its own filesystem; locally, a job that downloads weights (torch hub), writes pip's or
    matplotlib's cache, or anything under ~ would otherwise write into the user's shared ~/.cache.
    """
    home = layout.base / "home"
    cache = home / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    return {
        "HOME": str(home),
        "XDG_CACHE_HOME": str(cache),
        "TORCH_HOME": str(cache / "torch"),
        "PIP_CACHE_DIR": str(cache / "pip"),
        "MPLCONFIGDIR": str(cache / "matplotlib"),
        "HF_HOME": str(cache / "huggingface"),
    }


# Channels whose files are code the SDK v3 ModelTrainer ships, with /opt/ml paths written into them.
SCRIPT_CHANNELS = ("sm_drivers", "code")
_SCRIPT_SUFFIXES = (".sh", ".py", ".json")
_OPT_ML_RX = re.compile(r"/opt/ml(?![\w.-])")


def relocate_text(text: str, base: Path) -> str:
    """Rewrite every ``/opt/ml`` path *inside* ``text`` (a shell command, a script) into the host's base dir.

    ``relocate`` only handles a value that *is* a path; the SDK v3 ModelTrainer's ContainerArguments embed theirs in
    one ``bash -c`` string (``["-c", "chmod +x /opt/ml/input/data/sm_drivers/sm_train.sh && /opt/ml/..."]``,
    sagemaker-train 1.27.0 ``sagemaker/train/constants.py`` DEFAULT_CONTAINER_ARGUMENTS, sent by model_trainer.py:819).
    """
    return _OPT_ML_RX.sub(str(base).replace("\\", "\\\\"), text)


def relocate_channel_scripts(layout: HostLayout) -> int:
    """Rewrite ``/opt/ml`` to the host's base dir inside the ModelTrainer's driver and code channels.

    The local stand-in for mounting the host's tree at /opt/ml: the SDK v3 drivers (``sm_train.sh``,
    ``environment.py``, ...) hard-code ``/opt/ml/...`` paths (sagemaker-contract.md §5). Only text files of the
    script channels are touched; data channels never are. Returns how many files changed.
    """
    changed = 0
    for channel in SCRIPT_CHANNELS:
        root = layout.data / channel
        if not root.is_dir():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in _SCRIPT_SUFFIXES):
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            relocated = relocate_text(text, layout.base)
            if relocated != text:
                path.write_text(relocated, encoding="utf-8")
                changed += 1
    return changed
