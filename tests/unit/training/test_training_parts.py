"""Metric lines vs the published regexes, unpadded sharding, the ShardedByS3Key rule, atomic checkpoints."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import checkpoint
from distributed import DistInfo, UnpaddedDistributedSampler, distribution_type, shard_layout
from metrics import MetricAccumulator, format_metric_line
from model import build_model, create_model

TRAINING = Path(__file__).resolve().parents[3] / "training"


def test_metric_definitions_parse_the_metric_lines() -> None:
    definitions = json.loads((TRAINING / "metric_definitions.json").read_text())
    assert [d["Name"] for d in definitions] == [
        "train:loss",
        "train:top1",
        "train:throughput",
        "valid:loss",
        "valid:top1",
        "valid:top5",
        "test:loss",
        "test:top1",
        "test:top5",
        "kept:loss",
        "kept:top1",
    ]
    values = {"loss": 0.5231, "top1": 0.8125, "top5": 0.99, "samples": 1200, "seconds": 3.21, "throughput": 373.83}
    lines = "\n".join(
        [
            format_metric_line("train", 1, values),
            format_metric_line("valid", 1, {k: values[k] for k in ("loss", "top1", "top5", "samples")}),
            format_metric_line("kept", 1, {"loss": 0.4, "top1": 0.85, "top5": 1.0}),
            format_metric_line("test", 3, {"loss": 0.401, "top1": 0.9, "top5": 1.0, "samples": 300}),
        ]
    )
    assert lines.splitlines()[0] == (
        "METRIC split=train epoch=1 loss=0.523100 top1=0.812500 top5=0.990000 samples=1200 seconds=3.210 "
        "throughput=373.8"
    )
    found = {d["Name"]: float(re.search(d["Regex"], lines).group(1)) for d in definitions}  # type: ignore[union-attr]
    assert found == {
        "train:loss": 0.5231,
        "train:top1": 0.8125,
        "train:throughput": 373.8,
        "valid:loss": 0.5231,
        "valid:top1": 0.8125,
        "valid:top5": 0.99,
        "test:loss": 0.401,
        "test:top1": 0.9,
        "test:top5": 1.0,
        "kept:loss": 0.4,
        "kept:top1": 0.85,
    }


def test_the_tuning_objective_is_the_kept_epochs_not_the_last_epochs() -> None:
    """SageMaker ranks a tuning job on its objective's final value (the last line matched). train.py keeps the epoch
    of lowest valid loss and writes its valid metrics as ``kept`` after the epochs: that is the value ranked."""
    definitions = {d["Name"]: d["Regex"] for d in json.loads((TRAINING / "metric_definitions.json").read_text())}
    log = "\n".join(
        [
            format_metric_line("valid", 1, {"loss": 0.30, "top1": 0.90, "top5": 1.0}),  # kept (lowest loss)
            format_metric_line("valid", 2, {"loss": 0.55, "top1": 0.70, "top5": 1.0}),  # overfitted, last
            format_metric_line("kept", 1, {"loss": 0.30, "top1": 0.90, "top5": 1.0}),
        ]
    )
    final = {name: float(re.findall(regex, log)[-1]) for name, regex in definitions.items() if re.search(regex, log)}
    assert final["valid:top1"] == 0.70  # what the objective used to be: the last epoch's
    assert final["kept:top1"] == 0.90  # the model the job keeps


def test_accumulator_is_mean_per_sample_cross_entropy() -> None:
    torch.manual_seed(0)
    logits, targets = torch.randn(10, 7), torch.randint(0, 7, (10,))
    acc = MetricAccumulator()
    # Uneven batches: a mean of batch means would be wrong, a floor division would be worse.
    for sl in (slice(0, 3), slice(3, 10)):
        acc.update(logits[sl], targets[sl], torch.nn.functional.cross_entropy(logits[sl], targets[sl], reduction="sum"))
    out = acc.compute()
    assert out["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, targets).item(), rel=1e-6)
    assert out["top1"] == pytest.approx((logits.argmax(1) == targets).float().mean().item())
    assert out["samples"] == 10


@pytest.mark.parametrize(("size", "world"), [(10, 2), (11, 2), (1259, 2), (7, 3), (2, 4)])
def test_unpadded_shards_are_disjoint_and_cover_the_dataset(size: int, world: int) -> None:
    data = list(range(size))
    for epoch in (0, 1):
        shards = []
        for rank in range(world):
            sampler = UnpaddedDistributedSampler(data, world, rank, shuffle=True, seed=3)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
            assert len(sampler) == len(shards[-1])
        flat = [i for shard in shards for i in shard]
        assert len(flat) == size and sorted(flat) == data
        assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_set_epoch_reshuffles() -> None:
    sampler = UnpaddedDistributedSampler(list(range(50)), 1, 0, shuffle=True, seed=0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first and sorted(sampler) == sorted(first)


def test_sharded_by_s3_key_splits_only_across_local_ranks() -> None:
    info = DistInfo(rank=5, world_size=8, local_rank=1, local_world_size=4, backend="gloo")
    config = json.dumps({"training": {"S3DistributionType": "ShardedByS3Key", "TrainingInputMode": "File"}})
    assert distribution_type(config, "training") == "ShardedByS3Key"
    assert shard_layout(info, "ShardedByS3Key") == (4, 1)
    assert shard_layout(info, distribution_type(None, "training")) == (8, 5)
    replicated = json.dumps({"training": {"S3DistributionType": "FullyReplicated"}})
    assert shard_layout(info, distribution_type(replicated, "training")) == (8, 5)


def test_checkpoint_atomic_save_load_and_corrupt_file(tmp_path: Path) -> None:
    assert checkpoint.load_checkpoint(tmp_path) is None
    state = {"epoch": 2, "model": {"w": torch.ones(2)}, "rng": checkpoint.rng_state()}
    path = checkpoint.save_checkpoint(tmp_path, state)
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint.CHECKPOINT_NAME]
    loaded = checkpoint.load_checkpoint(tmp_path)
    assert loaded is not None and loaded["epoch"] == 2 and torch.equal(loaded["model"]["w"], torch.ones(2))
    path.write_bytes(b"not a checkpoint")
    assert checkpoint.load_checkpoint(tmp_path) is None


def test_rng_state_round_trip() -> None:
    saved = checkpoint.rng_state()
    a = torch.rand(4)
    checkpoint.set_rng_state(saved)
    assert torch.equal(a, torch.rand(4))


def test_pretrained_file_keeps_backbone_and_replaces_head(tmp_path: Path) -> None:
    donor = create_model("smallcnn", 1000)
    torch.save(donor.state_dict(), tmp_path / "imagenet.pth")
    net = build_model("smallcnn", 133, pretrained=str(tmp_path / "imagenet.pth"), freeze_backbone=True)
    assert net.fc.out_features == 133
    assert torch.equal(net.features[0][0].weight, donor.features[0][0].weight)
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]


def test_weights_channel_is_used_by_auto(tmp_path: Path) -> None:
    donor = create_model("smallcnn", 5)
    torch.save(donor.state_dict(), tmp_path / "weights.pth")
    net = build_model("smallcnn", 3, pretrained="auto", weights_dir=str(tmp_path))
    assert torch.equal(net.features[2][0].weight, donor.features[2][0].weight)


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_auto_without_network_or_weights_falls_back_to_random() -> None:
    # Sockets are disabled in unit tests: the reachability probe must fail fast, not hang or raise.
    net = build_model("resnet18", 4, pretrained="auto")
    assert net.fc.out_features == 4


def test_bad_pretrained_path_is_clear() -> None:
    with pytest.raises(ValueError, match="does not exist"):
        build_model("smallcnn", 3, pretrained="/nope/weights.pth")
