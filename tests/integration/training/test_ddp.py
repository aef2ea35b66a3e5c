"""Real 2-process DDP over gloo, started the SageMaker multi-host way (SM_HOSTS, rank = index of current host)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from training_helpers import HPARAMS, TrainRun, free_port, start_train

pytestmark = [pytest.mark.slow, pytest.mark.distributed]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> list[TrainRun]:
    port = str(free_port())
    hosts = '["algo-1","algo-2"]'
    procs = []
    roots = [tmp_path_factory.mktemp(f"algo-{i}") for i in (1, 2)]
    for i, root in enumerate(roots, start=1):
        # Half the per-process batch: the global batch and the number of optimizer steps match the single run.
        procs.append(
            start_train(
                root,
                digits_dir,
                [*HPARAMS, "--batch-size", "16", "--record-shards", "true"],
                SM_HOSTS=hosts,
                SM_CURRENT_HOST=f"algo-{i}",
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=port,
            )
        )
    runs = []
    for root, proc in zip(roots, procs, strict=True):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        runs.append(TrainRun(root, root / "model", root / "output", out, err, 0.0))
    return runs


def test_ddp_accuracy_matches_single_process(ddp_run: list[TrainRun], single_run: TrainRun) -> None:
    rank0, rank1 = ddp_run
    assert "joined process group: rank 0/2" in rank0.stderr
    ddp_top1 = rank0.metric_lines("test")[0]["top1"]
    single_top1 = single_run.metric_lines("test")[0]["top1"]
    print(f"single-process test top1={single_top1:.4f}, 2-rank DDP test top1={ddp_top1:.4f}")
    # Not an identity: per-rank BatchNorm statistics and augmentation streams differ from one process's. On 269 test
    # images at ~0.98, one run's top-1 has a standard error of ~0.0085, a difference of two runs ~0.012; 0.03 is
    # ~2.5 of those. (Measured: 0.9888 single vs 0.9851 DDP with Join, 0.9777 with the equal-step schedule.) That
    # the gradients themselves equal one process's is proven exactly in tests/unit/training/test_step_schedule.py.
    assert abs(ddp_top1 - single_top1) <= 0.03
    assert rank1.metric_lines("test") == []  # metrics are logged once, by rank 0


def test_each_rank_sees_a_disjoint_shard_whose_union_is_the_dataset(ddp_run: list[TrainRun], digits_dir: Path) -> None:
    n_train = sum(1 for _ in (digits_dir / "train").rglob("*.jpg"))
    for epoch in range(1, 7):
        shards = [
            json.loads((r.output_dir / "data" / "shards" / f"epoch-{epoch}-rank-{rank}.json").read_text())
            for rank, r in enumerate(ddp_run)
        ]
        assert not set(shards[0]) & set(shards[1])
        assert sorted(shards[0] + shards[1]) == list(range(n_train))
    first = [
        json.loads((r.output_dir / "data" / "shards" / f"epoch-1-rank-{i}.json").read_text())
        for i, r in enumerate(ddp_run)
    ]
    second = [
        json.loads((r.output_dir / "data" / "shards" / f"epoch-2-rank-{i}.json").read_text())
        for i, r in enumerate(ddp_run)
    ]
    assert first[0] != second[0]  # set_epoch reshuffles
    assert all(row["samples"] == n_train for row in ddp_run[0].metric_lines("train"))


def test_only_rank_zero_writes_artifacts(ddp_run: list[TrainRun]) -> None:
    rank0, rank1 = ddp_run
    assert (rank0.model_dir / "model.pth").is_file()
    assert not rank1.model_dir.exists() or not any(rank1.model_dir.iterdir())
    assert not (rank1.output_dir / "data" / "metrics.json").exists()
