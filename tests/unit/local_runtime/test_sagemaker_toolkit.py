"""Pure parts of the local SageMaker: toolkit rendering, SM env, metrics, validation, handler rules, tuning spaces."""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_runtime.s3 import LocalS3, S3UriError, parse_uri
from local_runtime.sagemaker import toolkit
from local_runtime.sagemaker.errors import SageMakerError
from local_runtime.sagemaker.tuning import grid_points, sample_random, validate_ranges
from local_runtime.sagemaker.validate import validate_input
from local_runtime.sagemaker.worker import Handler

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
    user, sagemaker, framework = toolkit.split_hyperparameters(toolkit.decode_hyperparameters(SDK_HPS))
    assert set(sagemaker) == {
        "sagemaker_program", "sagemaker_submit_directory", "sagemaker_container_log_level", "sagemaker_region",
        "_tuning_objective_metric",
    }  # fmt: skip
    assert framework == {"sagemaker_torch_distributed_enabled": True}
    assert toolkit.to_cmd_args(user) == [
        "--arch", "resnet18",
        "--checkpoint-dir", "/opt/ml/checkpoints",
        "--epochs", "3",
        "--freeze-backbone", "True",  # JSON true → Python True → str()
        "-k", "1",
        "--learning-rate", "0.01",
        "--opts", "a=1,b=2",
    ]  # fmt: skip


def test_sm_env_matches_the_toolkit(tmp_path: Path) -> None:
    layout = toolkit.HostLayout(tmp_path / "algo-2")
    env = toolkit.training_env(
        layout, job_name="job", current_host="algo-2", hosts=["algo-2", "algo-1"], instance_type="ml.g5.xlarge",
        raw_hyperparameters=SDK_HPS, channels=CHANNELS, gpus=0,
    )  # fmt: skip
    base = str(layout.base)
    assert env["SM_HOSTS"] == '["algo-1","algo-2"]'
    assert env["SM_CURRENT_HOST"] == "algo-2"
    assert env["SM_MODEL_DIR"] == f"{base}/model"
    assert env["SM_CHANNELS"] == '["training","weights"]'
    assert env["SM_CHANNEL_TRAINING"] == f"{base}/input/data/training"
    assert env["SM_OUTPUT_DATA_DIR"] == f"{base}/output/data"
    assert env["SM_OUTPUT_DIR"] == f"{base}/output"
    assert env["SM_HP_LEARNING-RATE"] == "0.01" and env["SM_HP_EPOCHS"] == "3"
    assert env["SM_HP_FREEZE-BACKBONE"] == "true"  # env keeps JSON, the CLI gets str()
    assert "SM_HP__TUNING_OBJECTIVE_METRIC" not in env
    assert env["SM_FRAMEWORK_PARAMS"] == '{"sagemaker_torch_distributed_enabled":true}'
    assert env["SM_USER_ENTRY_POINT"] == "train.py" and env["SM_MODULE_NAME"] == "train"
    args = json.loads(env["SM_USER_ARGS"])
    assert args[args.index("--checkpoint-dir") + 1] == f"{base}/checkpoints"  # /opt/ml relocated to the host base
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["is_master"] is False and training_env["master_hostname"] == "algo-1"
    assert training_env["distribution_hosts"] == ["algo-1", "algo-2"]
    assert json.loads(env["SM_INPUT_DATA_CONFIG"]) == {
        "training": {"TrainingInputMode": "File", "S3DistributionType": "ShardedByS3Key", "RecordWrapperType": "None",
                     "ContentType": "application/x-image"},
        "weights": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"},
    }  # fmt: skip
    assert json.loads(env["SM_RESOURCE_CONFIG"]) == toolkit.resource_config(
        "algo-2", ["algo-1", "algo-2"], "ml.g5.xlarge"
    )
    assert all(isinstance(v, str) for v in env.values())


def test_resource_config_shape() -> None:
    rc = toolkit.resource_config("algo-1", ["algo-2", "algo-1"], "ml.m5.large")
    assert rc["hosts"] == ["algo-1", "algo-2"] and rc["network_interface_name"] == "eth0"
    assert rc["instance_groups"] == [
        {"instance_group_name": "homogeneousCluster", "instance_type": "ml.m5.large", "hosts": ["algo-1", "algo-2"]}
    ]


def test_metric_parser_keeps_the_last_value_of_each_metric() -> None:
    defs = (
        json.loads((Path(__file__).parents[3] / "training" / "metric_definitions.json").read_text())
        if (Path(__file__).parents[3] / "training" / "metric_definitions.json").exists()
        else [{"Name": "valid:top1", "Regex": r"split=valid .*?top1=([0-9.]+)"}]
    )
    parser = toolkit.MetricParser([*defs, {"Name": "broken", "Regex": "("}])
    parser.feed("METRIC split=valid epoch=1 loss=0.5 top1=0.250000 top5=0.9 samples=10", 1.0)
    parser.feed("noise", 2.0)
    parser.feed("METRIC split=valid epoch=2 loss=0.4 top1=0.500000 top5=0.9 samples=10", 3.0)
    final = {m["MetricName"]: (m["Value"], m["Timestamp"]) for m in parser.final_metric_data_list()}
    assert final["valid:top1"] == (0.5, 3.0)
    assert "broken" not in final


def test_validation_names_the_missing_member() -> None:
    with pytest.raises(SageMakerError) as exc:
        validate_input("CreateEndpoint", {"EndpointName": "e"})
    assert exc.value.code == "ValidationException"
    assert exc.value.message == (
        "1 validation error detected: Value null at 'endpointConfigName' failed to satisfy constraint: "
        "Member must not be null"
    )
    with pytest.raises(SageMakerError, match="Member must satisfy enum value set"):
        validate_input("ListEndpoints", {"SortBy": "Size"})
    with pytest.raises(SageMakerError) as unknown:
        validate_input("DoMagic", {})
    assert unknown.value.code == "UnknownOperationException"


def test_s3_uris_map_to_disk_and_reject_escapes(tmp_path: Path) -> None:
    s3 = LocalS3(tmp_path)
    assert parse_uri("s3://bucket/a/b.txt") == ("bucket", "a/b.txt")
    for bad in ("http://x/y", "s3://", "s3://b/../etc"):
        with pytest.raises(S3UriError):
            parse_uri(bad)
    s3.put_bytes("s3://b/data/x/1.txt", b"1")
    s3.put_bytes("s3://b/data-2/2.txt", b"2")
    assert s3.list_keys("s3://b/data/") == ["data/x/1.txt"]
    assert s3.list_keys("s3://b/data") == ["data-2/2.txt", "data/x/1.txt"]  # S3 prefixes are string prefixes
    s3.download("s3://b/data/", tmp_path / "out")
    assert (tmp_path / "out" / "x" / "1.txt").read_bytes() == b"1"


def _model(tmp_path: Path, source: str) -> str:
    (tmp_path / "code").mkdir(parents=True, exist_ok=True)
    (tmp_path / "code" / "inference.py").write_text(source)
    return str(tmp_path)


@pytest.fixture(autouse=True)
def _isolated_user_modules() -> Iterator[None]:
    # Handler imports the model's code/inference.py by name and puts code/ on sys.path, as the toolkit does in its
    # own process; restore both so the stand-in module can't shadow training/inference.py for later tests.
    path, before = list(sys.path), dict(sys.modules)
    yield
    sys.path[:] = path
    for name in [n for n in sys.modules if n not in before or sys.modules[n] is not before[n]]:
        del sys.modules[name]
    sys.modules.update(before)


def test_handler_arity_context_and_status_codes(tmp_path: Path) -> None:
    src = """
class E(Exception):
    status_code = 415
    message = "nope"
def model_fn(model_dir, context):
    return {"dir": context.system_properties["model_dir"]}
def input_fn(data, content_type):
    if content_type != "application/json":
        raise E()
    return data
def predict_fn(data, model):
    if data == "boom":
        raise KeyError("boom")
    return {"echo": data, "dir": model["dir"]}
"""
    handler = Handler(_model(tmp_path / "m1", src))
    status, body, ctype, _ = handler.invoke(b"hi", {"Content-Type": "application/json", "Accept": "*/*"})
    assert (status, ctype) == (200, "application/json")  # */* → SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT default
    assert json.loads(body) == {"echo": "hi", "dir": str(tmp_path / "m1")}
    status, body, *_ = handler.invoke(b"x", {"Content-Type": "image/png"})
    assert status == 415 and body.startswith(b"nope\n")
    status, *_ = handler.invoke(b"boom", {"Content-Type": "application/json"})
    assert status == 500


def test_handler_rejects_bad_arity_and_transform_with_input_fn(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="predict_fn must take 2 arguments"):
        Handler(_model(tmp_path / "a", "def model_fn(d): return 1\ndef predict_fn(a, b, c, d): return 1\n"))
    with pytest.raises(ValueError, match="transform_fn"):
        Handler(_model(tmp_path / "b", "def model_fn(d): return 1\ndef transform_fn(m, d, c, a): return 1\n"
                                        "def input_fn(d, c): return d\n"))  # fmt: skip


def test_tuning_search_spaces() -> None:
    ranges = {
        "ContinuousParameterRanges": [
            {"Name": "lr", "MinValue": "0.0001", "MaxValue": "0.1", "ScalingType": "Logarithmic"}
        ],
        "IntegerParameterRanges": [{"Name": "epochs", "MinValue": "1", "MaxValue": "3"}],
        "CategoricalParameterRanges": [{"Name": "arch", "Values": ["resnet18", "resnet34"]}],
    }
    rng = random.Random(7)
    for _ in range(20):
        point = sample_random(ranges, rng)
        assert 0.0001 <= float(point["lr"]) <= 0.1 and point["epochs"] in {"1", "2", "3"}
        assert point["arch"] in {"resnet18", "resnet34"}
    cats = {"CategoricalParameterRanges": [{"Name": "a", "Values": ["1", "2"]}, {"Name": "b", "Values": ["x", "y"]}]}
    assert len(grid_points(cats)) == 4
    with pytest.raises(SageMakerError, match="Grid search supports only CategoricalParameterRanges"):
        validate_ranges("Grid", ranges)
    with pytest.raises(SageMakerError, match="MinValue 5 is greater than MaxValue 1"):
        validate_ranges("Random", {"IntegerParameterRanges": [{"Name": "e", "MinValue": "5", "MaxValue": "1"}]})
