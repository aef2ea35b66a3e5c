"""local_aws.sagemaker.training.toolkit: what the SageMaker training toolkit computes inside the container."""

from __future__ import annotations

import json
from pathlib import Path

from local_aws.sagemaker.training import toolkit

CHANNELS = [
    {
        "ChannelName": "training",
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/d/", "S3DataDistributionType": "ShardedByS3Key"}
        },
        "InputMode": "FastFile",
        "ContentType": "application/x-image",
    },
    {"ChannelName": "weights", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/w/"}}},
]
SDK_HPS = {
    "sagemaker_program": '"train.py"',
    "sagemaker_submit_directory": '"s3://b/job/source/sourcedir.tar.gz"',
    "sagemaker_container_log_level": "20",
    "sagemaker_region": '"us-east-1"',
    "sagemaker_torch_distributed_enabled": "true",
    "_tuning_objective_metric": "valid:top1",
    "epochs": '"3"',
    "learning-rate": "0.01",
    "freeze-backbone": "true",
    "arch": "resnet18",
    "k": "1",
    "opts": '{"b": 2, "a": 1}',
    "checkpoint-dir": '"/opt/ml/checkpoints"',
}


def test_hyperparameters_render_like_the_toolkit() -> None:
    """JSON-decoded, split into user/sagemaker/framework, and rendered as sorted ``--key value`` arguments."""
    user, sagemaker, framework = toolkit.split_hyperparameters(toolkit.decode_hyperparameters(SDK_HPS))
    assert set(sagemaker) == {
        "sagemaker_program",
        "sagemaker_submit_directory",
        "sagemaker_container_log_level",
        "sagemaker_region",
        "_tuning_objective_metric",
    }
    assert framework == {"sagemaker_torch_distributed_enabled": True}
    assert toolkit.to_cmd_args(user) == [
        "--arch",
        "resnet18",
        "--checkpoint-dir",
        "/opt/ml/checkpoints",
        "--epochs",
        "3",
        "--freeze-backbone",
        "True",  # JSON true → Python True → str()
        "-k",
        "1",
        "--learning-rate",
        "0.01",
        "--opts",
        "a=1,b=2",
    ]


def test_undecodable_hyperparameters_stay_raw_strings() -> None:
    """A value that is not JSON (``resnet18``, ``1e``) is kept as the string it was."""
    assert toolkit.decode_hyperparameters({"a": "resnet18", "b": "1e", "c": "null"}) == {
        "a": "resnet18",
        "b": "1e",
        "c": None,
    }


def test_env_values_are_raw_strings_or_compact_sorted_json() -> None:
    """``mapping.to_env_vars``: strings raw, None empty, everything else compact JSON with sorted keys."""
    assert toolkit.format_env_value("x y") == "x y"
    assert toolkit.format_env_value(None) == ""
    assert toolkit.format_env_value({"b": 1, "a": [True]}) == '{"a":[true],"b":1}'
    assert toolkit.format_env_value(3) == "3"


def test_sm_env_matches_the_toolkit(tmp_path: Path) -> None:
    """Every SM_* variable: hosts, dirs relocated under the host base, channels, HPs, training env, configs."""
    layout = toolkit.HostLayout(tmp_path / "algo-2")
    env = toolkit.training_env(
        layout,
        job_name="job",
        current_host="algo-2",
        hosts=["algo-2", "algo-1"],
        instance_type="ml.g5.xlarge",
        raw_hyperparameters=SDK_HPS,
        channels=CHANNELS,
        gpus=0,
    )
    base = str(layout.base)
    assert env["SM_HOSTS"] == '["algo-1","algo-2"]'
    assert env["SM_CURRENT_HOST"] == "algo-2"
    assert env["SM_MODEL_DIR"] == f"{base}/model"
    assert env["SM_CHANNELS"] == '["training","weights"]'
    assert env["SM_CHANNEL_TRAINING"] == f"{base}/input/data/training"
    assert env["SM_CHANNEL_WEIGHTS"] == f"{base}/input/data/weights"
    assert env["SM_OUTPUT_DATA_DIR"] == f"{base}/output/data"
    assert env["SM_OUTPUT_DIR"] == f"{base}/output"
    assert env["SM_MODULE_DIR"] == f"{base}/code"
    assert env["SM_HP_LEARNING-RATE"] == "0.01" and env["SM_HP_EPOCHS"] == "3"
    assert env["SM_HP_FREEZE-BACKBONE"] == "true"  # env keeps JSON, the CLI gets str()
    assert "SM_HP__TUNING_OBJECTIVE_METRIC" not in env
    assert env["SM_FRAMEWORK_PARAMS"] == '{"sagemaker_torch_distributed_enabled":true}'
    assert env["SM_USER_ENTRY_POINT"] == "train.py" and env["SM_MODULE_NAME"] == "train"
    assert env["SM_LOG_LEVEL"] == "20" and env["SM_NUM_GPUS"] == "0"
    args = json.loads(env["SM_USER_ARGS"])
    assert args[args.index("--checkpoint-dir") + 1] == f"{base}/checkpoints"  # /opt/ml relocated to the host base
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["is_master"] is False and training_env["master_hostname"] == "algo-1"
    assert training_env["distribution_hosts"] == ["algo-1", "algo-2"]  # torch_distributed enabled
    assert training_env["job_name"] == "job"
    assert json.loads(env["SM_INPUT_DATA_CONFIG"]) == {
        "training": {
            "TrainingInputMode": "File",
            "S3DistributionType": "ShardedByS3Key",
            "RecordWrapperType": "None",
            "ContentType": "application/x-image",
        },
        "weights": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"},
    }
    assert json.loads(env["SM_RESOURCE_CONFIG"]) == toolkit.resource_config(
        "algo-2", ["algo-1", "algo-2"], "ml.g5.xlarge"
    )
    assert all(isinstance(v, str) for v in env.values())


def test_without_a_distribution_flag_there_are_no_distribution_hosts(tmp_path: Path) -> None:
    """No ``sagemaker_*_enabled`` framework param: ``distribution_hosts`` is empty; the first sorted host is master."""
    env = toolkit.training_env(
        toolkit.HostLayout(tmp_path),
        job_name="j",
        current_host="algo-1",
        hosts=["algo-1"],
        instance_type="ml.m5.large",
        raw_hyperparameters={"sagemaker_program": '"train.py"'},
        channels=[],
        gpus=1,
    )
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["distribution_hosts"] == [] and training_env["is_master"] is True
    assert env["SM_CHANNELS"] == "[]" and env["SM_USER_ARGS"] == "[]"


def test_resource_config_shape() -> None:
    """resourceconfig.json of a homogeneous cluster, hosts sorted."""
    rc = toolkit.resource_config("algo-1", ["algo-2", "algo-1"], "ml.m5.large")
    assert rc["hosts"] == ["algo-1", "algo-2"] and rc["network_interface_name"] == "eth0"
    assert rc["current_host"] == "algo-1" and rc["current_group_name"] == "homogeneousCluster"
    assert rc["instance_groups"] == [
        {"instance_group_name": "homogeneousCluster", "instance_type": "ml.m5.large", "hosts": ["algo-1", "algo-2"]}
    ]


def test_write_input_config_writes_the_three_service_files(tmp_path: Path) -> None:
    """hyperparameters.json (raw strings), resourceconfig.json and inputdataconfig.json under input/config."""
    layout = toolkit.HostLayout(tmp_path)
    layout.create()
    toolkit.write_input_config(layout, "algo-1", ["algo-1"], "ml.m5.large", SDK_HPS, CHANNELS)
    assert json.loads((layout.input_config / "hyperparameters.json").read_text()) == SDK_HPS
    assert json.loads((layout.input_config / "resourceconfig.json").read_text())["hosts"] == ["algo-1"]
    assert set(json.loads((layout.input_config / "inputdataconfig.json").read_text())) == {"training", "weights"}
    for directory in (layout.code, layout.model, layout.data, layout.output_data, layout.output_intermediate):
        assert directory.is_dir()
    assert layout.failure == tmp_path / "output" / "failure"


def test_relocate_rewrites_only_opt_ml_paths(tmp_path: Path) -> None:
    """``/opt/ml`` and ``/opt/ml/...`` move under the base; lookalikes and other paths stay."""
    assert toolkit.relocate("/opt/ml", tmp_path) == str(tmp_path)
    assert toolkit.relocate("/opt/ml/model", tmp_path) == f"{tmp_path}/model"
    assert toolkit.relocate("/opt/mlflow", tmp_path) == "/opt/mlflow"
    assert toolkit.relocate("relative/opt/ml", tmp_path) == "relative/opt/ml"


def test_relocate_text_rewrites_paths_inside_a_command(tmp_path: Path) -> None:
    """Every /opt/ml path inside a ``bash -c`` string moves; ``/opt/mlflow`` and ``/opt/ml.bak`` do not."""
    command = "chmod +x /opt/ml/input/data/sm_drivers/sm_train.sh && /opt/ml/input/data/sm_drivers/sm_train.sh"
    assert toolkit.relocate_text(command, tmp_path) == (
        f"chmod +x {tmp_path}/input/data/sm_drivers/sm_train.sh && {tmp_path}/input/data/sm_drivers/sm_train.sh"
    )
    assert toolkit.relocate_text("cd /opt/ml; ls /opt/mlflow /opt/ml.bak", tmp_path) == (
        f"cd {tmp_path}; ls /opt/mlflow /opt/ml.bak"
    )


def test_relocate_channel_scripts_rewrites_driver_text_files_only(tmp_path: Path) -> None:
    """sm_drivers/code channel scripts get the host base; data channels, binaries and lookalikes are untouched."""
    layout = toolkit.HostLayout(tmp_path / "algo-1")
    drivers = layout.data / "sm_drivers"
    drivers.mkdir(parents=True)
    (drivers / "sm_train.sh").write_text("cd /opt/ml/input/data/code && python /opt/ml/code/train.py\n")
    (drivers / "env.json").write_text('{"dir": "/opt/ml/model", "other": "/opt/mlflow"}')
    (drivers / "blob.bin").write_bytes(b"/opt/ml/model")
    (layout.data / "code").mkdir()
    (layout.data / "code" / "utf16.py").write_bytes("/opt/ml".encode("utf-16"))  # not UTF-8: skipped
    (layout.data / "training").mkdir()
    (layout.data / "training" / "labels.json").write_text('{"path": "/opt/ml/x"}')
    assert toolkit.relocate_channel_scripts(layout) == 2
    base = str(layout.base)
    assert (drivers / "sm_train.sh").read_text() == f"cd {base}/input/data/code && python {base}/code/train.py\n"
    assert json.loads((drivers / "env.json").read_text()) == {"dir": f"{base}/model", "other": "/opt/mlflow"}
    assert (drivers / "blob.bin").read_bytes() == b"/opt/ml/model"
    assert (layout.data / "training" / "labels.json").read_text() == '{"path": "/opt/ml/x"}'
    assert toolkit.relocate_channel_scripts(layout) == 0  # idempotent


def test_container_home_keeps_caches_inside_the_hosts_tree(tmp_path: Path) -> None:
    """HOME and every cache variable point inside the host's base dir, never at the user's ~/.cache."""
    layout = toolkit.HostLayout(tmp_path / "algo-1")
    env = toolkit.container_home(layout)
    assert set(env) == {"HOME", "XDG_CACHE_HOME", "TORCH_HOME", "PIP_CACHE_DIR", "MPLCONFIGDIR", "HF_HOME"}
    for value in env.values():
        assert Path(value).is_relative_to(layout.base)
    assert Path(env["XDG_CACHE_HOME"]).is_dir()
