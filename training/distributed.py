"""Process-group setup (torchrun or SageMaker multi-host) and data sharding.

Data distribution rule (CONTRACTS.md §2): with ``FullyReplicated`` every host holds the whole dataset and the
sampler splits it across all ``world_size`` ranks. With ``ShardedByS3Key`` each host already holds a 1/hosts slice,
so the sampler splits only across that host's local ranks; splitting again by the global rank would leave each
rank 1/N² of the data.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sized
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    backend: str | None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def get_rank() -> int:
    """Global rank, 0 when torch.distributed is not initialised."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """World size, 1 when torch.distributed is not initialised."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0 (or without distribution): the only process that writes artifacts."""
    return get_rank() == 0


def barrier() -> None:
    if get_world_size() > 1:
        dist.barrier()


def init_distributed(hosts: list[str], current_host: str, timeout_s: int = 1800) -> DistInfo:
    """Join the process group when more than one process takes part.

    torchrun sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; without it, SageMaker's plain runner starts one process per
    host and rank is the index of the current host (MASTER_ADDR/MASTER_PORT come from the env, defaulting to the
    first host and 7777 as the PyTorch toolkit exports them).

    Args:
        hosts: SM_HOSTS. current_host: SM_CURRENT_HOST. timeout_s: collective timeout.

    Returns:
        The rank layout; ``backend`` is None for a single process.

    Raises:
        ValueError: the current host is not among the hosts.
    """
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    env_world = int(os.environ.get("WORLD_SIZE", "1"))
    if env_world > 1:
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(env_world)))
        world = env_world
    elif len(hosts) > 1:
        if current_host not in hosts:
            raise ValueError(f"current host {current_host!r} is not in hosts {hosts}")
        rank, world, local_rank, local_world = hosts.index(current_host), len(hosts), 0, 1
        os.environ.setdefault("MASTER_ADDR", hosts[0])
        os.environ.setdefault("MASTER_PORT", "7777")
    else:
        return DistInfo(0, 1, 0, 1, None)
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(
        backend=backend, init_method="env://", rank=rank, world_size=world, timeout=timedelta(seconds=timeout_s)
    )
    return DistInfo(rank, world, local_rank, local_world, backend)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def distribution_type(input_data_config: str | None, channel: str) -> str:
    """S3DistributionType of a channel from SM_INPUT_DATA_CONFIG; ``FullyReplicated`` when unknown."""
    if not input_data_config:
        return "FullyReplicated"
    try:
        config = json.loads(input_data_config)
    except json.JSONDecodeError:
        return "FullyReplicated"
    entry = config.get(channel, {}) if isinstance(config, dict) else {}
    return str(entry.get("S3DistributionType", "FullyReplicated"))


def shard_layout(info: DistInfo, s3_distribution: str) -> tuple[int, int]:
    """(num_replicas, replica_rank) for the sampler under the data distribution rule in the module docstring."""
    if s3_distribution == "ShardedByS3Key":
        return info.local_world_size, info.local_rank
    return info.world_size, info.rank


class UnpaddedDistributedSampler(DistributedSampler[int]):
    """``DistributedSampler`` (same shuffling, ``set_epoch`` and sharding) without padding.

    The stock sampler repeats indices so that every rank gets the same count, which makes one epoch process more
    samples than the dataset holds. Here each index of an epoch goes to exactly one replica; shards differ by at most
    one sample and the training loop uses DDP's ``Join`` to absorb the uneven last step.
    """

    def __init__(
        self, dataset: Sized, num_replicas: int = 1, rank: int = 0, shuffle: bool = True, seed: int = 0
    ) -> None:
        super().__init__(
            dataset,  # type: ignore[arg-type]
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=False,
        )
        self.num_samples = len(range(rank, len(dataset), num_replicas))
        self.total_size = len(dataset)

    def indices(self) -> list[int]:
        """This replica's indices for the current epoch, in iteration order."""
        if self.shuffle:
            gen = torch.Generator()
            gen.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.total_size, generator=gen).tolist()
        else:
            order = list(range(self.total_size))
        return order[self.rank : self.total_size : self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices())

    def __len__(self) -> int:
        return self.num_samples


@dataclass(frozen=True)
class StepSchedule:
    """Every rank's batch sizes for one epoch: the same number of steps on every rank, no per-step collective.

    Shards differ by at most one sample (``UnpaddedDistributedSampler``), so plain chunking can leave one rank a step
    short, and DDP would hang on the missing all-reduce. The usual fix, ``Join``, adds a collective to every step
    (it all-reduces a "still running" flag). Here the step count is fixed up front from what every rank knows (the
    dataset size, the world size, the batch size): ``steps = ceil(ceil(N / W) / B)``. A shard one sample short of
    that gives one sample from its second-to-last batch to its last, so no batch is empty.

    Since batch sizes then differ across ranks, each rank weighs its per-sample losses by ``W / global`` (``global``
    = the samples of that step on all ranks, known locally from the schedule); DDP's gradient average then equals the
    mean over the step's global batch, exactly what one process would compute on the same samples.
    """

    sizes: tuple[tuple[int, ...], ...]  # sizes[rank][step]

    @classmethod
    def build(cls, total: int, replicas: int, batch_size: int, max_steps: int = 0) -> StepSchedule | None:
        """The schedule, or None when equal steps cannot give every rank a sample per step (batch 1, or N < W)."""
        if batch_size < 1 or replicas < 1:
            raise ValueError(f"batch_size and replicas must be >= 1, got {batch_size} and {replicas}")
        biggest = -(-total // replicas)
        steps = -(-biggest // batch_size)
        per_rank = []
        for rank in range(replicas):
            count = len(range(rank, total, replicas))
            sizes = [min(batch_size, count - step * batch_size) for step in range(steps)]
            if sizes and sizes[-1] == 0:
                if steps < 2 or sizes[-2] < 2:
                    return None
                sizes[-2] -= 1
                sizes[-1] = 1
            if any(size < 1 for size in sizes):
                return None
            per_rank.append(tuple(sizes[:max_steps] if max_steps else sizes))
        return cls(tuple(per_rank))

    @property
    def steps(self) -> int:
        return len(self.sizes[0]) if self.sizes else 0

    def global_sizes(self) -> list[int]:
        """Samples per step summed over ranks."""
        return [sum(rank[step] for rank in self.sizes) for step in range(self.steps)]

    def loss_weights(self) -> list[float]:
        """Per-step factor on the summed per-sample losses of a rank: ``W / global`` (see the class docstring)."""
        replicas = len(self.sizes)
        return [replicas / size for size in self.global_sizes()]


class ScheduledBatchSampler:
    """Yields one rank's index batches of a ``StepSchedule`` from its sampler's epoch order."""

    def __init__(self, sampler: UnpaddedDistributedSampler, schedule: StepSchedule, rank: int) -> None:
        self.sampler = sampler
        self.sizes = schedule.sizes[rank]

    def __iter__(self) -> Iterator[list[int]]:
        order = self.sampler.indices()
        start = 0
        for size in self.sizes:
            yield order[start : start + size]
            start += size

    def __len__(self) -> int:
        return len(self.sizes)
