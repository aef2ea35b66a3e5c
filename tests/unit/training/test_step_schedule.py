"""Equal steps on every rank without Join: the schedule, its batches, and gradients equal to one process's.

DDP averages the ranks' gradients. With each rank's summed per-sample loss weighted by ``W / global`` (train.py's
``loss_weights``), that average must equal the gradient one process computes with the mean loss over the same
step's samples, also on the uneven last steps. The model has no BatchNorm: per-rank batch statistics differ from a
single batch's by design of DDP (without SyncBatchNorm), which is not what this test is about.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from distributed import ScheduledBatchSampler, StepSchedule, UnpaddedDistributedSampler
from train import train_one_epoch


@pytest.mark.parametrize(
    ("total", "world", "batch"),
    [(9, 2, 2), (10, 2, 4), (1250, 2, 16), (1259, 3, 16), (7, 4, 2), (5, 1, 2), (33, 2, 16)],
)
def test_every_rank_runs_the_same_steps_and_trains_each_sample_once(total: int, world: int, batch: int) -> None:
    schedule = StepSchedule.build(total, world, batch)
    assert schedule is not None
    assert {len(sizes) for sizes in schedule.sizes} == {schedule.steps}
    seen: list[int] = []
    for rank in range(world):
        sampler = UnpaddedDistributedSampler(range(total), world, rank, shuffle=True, seed=3)  # type: ignore[arg-type]
        sampler.set_epoch(2)
        batches = list(ScheduledBatchSampler(sampler, schedule, rank))
        assert len(batches) == schedule.steps and all(1 <= len(b) <= batch for b in batches)
        assert [len(b) for b in batches] == list(schedule.sizes[rank])
        seen.extend(i for b in batches for i in b)
    assert sorted(seen) == list(range(total))  # exactly once: no padding, nothing dropped


def test_a_shard_one_short_moves_a_sample_into_its_last_step() -> None:
    """9 samples on 2 ranks, batch 2: shards of 5 and 4; plain chunking would give rank 1 only 2 steps."""
    schedule = StepSchedule.build(9, 2, 2)
    assert schedule is not None
    assert schedule.sizes == ((2, 2, 1), (2, 1, 1))
    assert schedule.global_sizes() == [4, 3, 2]
    assert schedule.loss_weights() == [2 / 4, 2 / 3, 2 / 2]


def test_schedules_that_would_need_an_empty_batch_are_refused() -> None:
    """Batch 1 with uneven shards, or fewer samples than ranks: train.py falls back to Join."""
    assert StepSchedule.build(3, 2, 1) is None
    assert StepSchedule.build(1, 2, 4) is None
    assert StepSchedule.build(4, 2, 1) is not None  # even shards need no moving
    with pytest.raises(ValueError, match="batch_size"):
        StepSchedule.build(4, 2, 0)


def test_max_steps_cuts_every_rank_at_the_same_step() -> None:
    schedule = StepSchedule.build(1250, 2, 16, max_steps=3)
    assert schedule is not None and schedule.sizes == ((16, 16, 16), (16, 16, 16))


def _delta(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], weights: list[float] | None) -> list:
    """Parameter change of one SGD step at lr 1 (= minus the gradient), through train.py's own train_one_epoch."""
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    train_one_epoch(model, batches, optimizer, None, torch.device("cpu"), 0, False, weights)  # type: ignore[arg-type]
    return [p.detach() - b for p, b in zip(model.parameters(), before, strict=True)]


def test_averaged_rank_gradients_equal_one_process_on_the_same_samples() -> None:
    """Every step of an uneven epoch (9 samples, 2 ranks, batch 2), uneven last steps included."""
    torch.manual_seed(0)
    images, targets = torch.randn(9, 3, 4, 4), torch.randint(0, 5, (9,))
    reference = nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.ReLU(), nn.Linear(16, 5))
    world = 2
    schedule = StepSchedule.build(9, world, 2)
    assert schedule is not None
    samplers = [UnpaddedDistributedSampler(range(9), world, r, shuffle=True, seed=1) for r in range(world)]  # type: ignore[arg-type]
    rank_batches = [list(ScheduledBatchSampler(samplers[r], schedule, r)) for r in range(world)]
    weights = schedule.loss_weights()
    for step in range(schedule.steps):
        per_rank = []
        for rank in range(world):
            idx = rank_batches[rank][step]
            per_rank.append(_delta(copy.deepcopy(reference), [(images[idx], targets[idx])], [weights[step]]))
        ddp_average = [sum(parts) / world for parts in zip(*per_rank, strict=True)]  # what DDP's all-reduce does
        union = [i for rank in range(world) for i in rank_batches[rank][step]]
        single = _delta(copy.deepcopy(reference), [(images[union], targets[union])], None)
        for got, want in zip(ddp_average, single, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_unweighted_ranks_would_not_match_on_an_uneven_step() -> None:
    """The check above can fail: plain per-rank means averaged over ranks are off on the 3-sample step."""
    torch.manual_seed(0)
    images, targets = torch.randn(3, 3, 4, 4), torch.randint(0, 5, (3,))
    reference = nn.Sequential(nn.Flatten(), nn.Linear(48, 5))
    per_rank = [
        _delta(copy.deepcopy(reference), [(images[[0, 1]], targets[[0, 1]])], None),
        _delta(copy.deepcopy(reference), [(images[[2]], targets[[2]])], None),
    ]
    average = [sum(parts) / 2 for parts in zip(*per_rank, strict=True)]
    single = _delta(copy.deepcopy(reference), [(images, targets)], None)
    assert not all(torch.allclose(a, s, rtol=1e-5, atol=1e-6) for a, s in zip(average, single, strict=True))
