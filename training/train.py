"""Training entry point: SageMaker (1 or N instances), EC2 (torchrun) and local runs use this file unchanged.

Hyperparameters arrive as ``--key value`` the way the SageMaker training toolkit renders them; paths and the cluster
layout default to the SM_* environment (CONTRACTS.md §2).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.join import Join
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from artifact import save_artifact, save_plots
from checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from data import build_datasets, resolve_split_dirs
from distributed import (
    DistInfo,
    ScheduledBatchSampler,
    StepSchedule,
    UnpaddedDistributedSampler,
    barrier,
    cleanup,
    distribution_type,
    init_distributed,
    is_main_process,
    shard_layout,
)
from hyperparameters import parse_args, write_failure
from metrics import MetricAccumulator, log_metrics, max_across_ranks
from model import build_model

LOGGER = logging.getLogger("train")


def _setup_logging(rank: int) -> None:
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"%(asctime)s %(levelname)s [rank {rank}] %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _make_loader(
    dataset: Dataset[Any], sampler: UnpaddedDistributedSampler, batch_size: int, workers: int, cuda: bool
) -> DataLoader[Any]:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=cuda,
        persistent_workers=workers > 0,
        drop_last=False,
    )


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader[Any],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    device: torch.device,
    max_steps: int,
    channels_last: bool,
    loss_weights: Sequence[float] | None = None,
) -> tuple[MetricAccumulator, float]:
    """One pass over this rank's shard; returns local sums and wall seconds.

    With ``loss_weights`` (a ``StepSchedule``'s: every rank runs the same steps), step ``i``'s loss is the summed
    per-sample cross-entropy times ``loss_weights[i]``, so DDP's average is the mean over the step's global batch.
    Without, the loss is the batch mean and ``Join`` absorbs uneven step counts. Metrics sum per-sample losses
    either way, so the epoch mean is exact whatever the batch sizes.
    """
    model.train()
    criterion = nn.CrossEntropyLoss(reduction="none")
    acc = MetricAccumulator()
    # NOTE: without a schedule, shards may differ by one sample, so ranks can run a different number of steps; Join
    # shadows the collectives of ranks that ran out of data (https://pytorch.org/tutorials/advanced/generic_join.html)
    # at the price of one extra all-reduce on every step.
    join = (
        Join([model])
        if isinstance(model, DistributedDataParallel) and loss_weights is None
        else contextlib.nullcontext()
    )
    start = time.perf_counter()
    with join:
        for step, (images, targets) in enumerate(loader):
            if max_steps and step >= max_steps:
                break
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=scaler is not None):
                logits = model(images)
                per_sample = criterion(logits, targets)
            loss_sum = per_sample.float().sum()
            loss = loss_sum * loss_weights[step] if loss_weights is not None else loss_sum / targets.shape[0]
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            acc.update(logits.detach().float(), targets, loss_sum.detach())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return acc, time.perf_counter() - start


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: DataLoader[Any],
    device: torch.device,
    max_steps: int = 0,
    channels_last: bool = False,
    collect: bool = False,
) -> tuple[MetricAccumulator, list[int], list[int]]:
    """Evaluate this rank's shard with the unwrapped model (no DDP collectives); sums are all-reduced by the caller.

    Returns:
        The local accumulator, and when ``collect`` the targets and top-1 predictions.
    """
    model.eval()
    criterion = nn.CrossEntropyLoss(reduction="sum")
    acc = MetricAccumulator()
    targets_all: list[int] = []
    preds_all: list[int] = []
    for step, (images, targets) in enumerate(loader):
        if max_steps and step >= max_steps:
            break
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=device.type == "cuda"):
            logits = model(images).float()
        acc.update(logits, targets, criterion(logits, targets))
        if collect:
            targets_all.extend(targets.tolist())
            preds_all.extend(logits.argmax(dim=1).tolist())
    return acc, targets_all, preds_all


def _gather_lists(values: list[int]) -> list[int]:
    if not dist.is_initialized():
        return values
    gathered: list[list[int] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, values)
    return [v for part in gathered for v in (part or [])]


def _record_shard(output_data_dir: Path, epoch: int, rank: int, indices: list[int]) -> None:
    shard_dir = output_data_dir / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    (shard_dir / f"epoch-{epoch}-rank-{rank}.json").write_text(json.dumps(indices))


def _broadcast_checkpoint(state: dict[str, Any] | None, info: DistInfo) -> dict[str, Any] | None:
    # Ranks on other hosts may hold a different (or no) local copy; rank 0's decides for everyone so optimizer
    # state and start epoch agree across the group.
    if not info.enabled:
        return state
    box: list[dict[str, Any] | None] = [state if info.rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def run(args: argparse.Namespace) -> dict[str, float]:
    """Train, evaluate and (on rank 0) write the artifact; returns the final metrics."""
    info = init_distributed(args.hosts, args.current_host)
    _setup_logging(info.rank)
    if info.enabled:
        LOGGER.info(
            "joined process group: rank %d/%d (local %d/%d, %s)",
            info.rank,
            info.world_size,
            info.local_rank,
            info.local_world_size,
            info.backend,
        )
    if args.dry_run:
        args.epochs = 1
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{info.local_rank}" if cuda else "cpu")
    if cuda:
        torch.backends.cudnn.benchmark = True
    _seed_everything(args.seed)

    dirs = resolve_split_dirs(args.data_dir, args.train_dir, args.valid_dir, args.test_dir)
    datasets = build_datasets(dirs, args.image_size, args.augment)
    classes = datasets["train"].classes
    s3_dist = distribution_type(os.environ.get("SM_INPUT_DATA_CONFIG"), "training" if args.data_dir else "train")
    replicas, replica_rank = shard_layout(info, s3_dist)
    LOGGER.info(
        "data %s: %s; %d classes; world %d, %s -> %d shards",
        dirs.train.parent,
        {k: len(v) for k, v in datasets.items()},
        len(classes),
        info.world_size,
        s3_dist,
        replicas,
    )
    samplers = {
        split: UnpaddedDistributedSampler(ds, replicas, replica_rank, shuffle=split == "train", seed=args.seed)
        for split, ds in datasets.items()
    }
    loaders = {
        split: _make_loader(ds, samplers[split], args.batch_size, args.num_workers, cuda)
        for split, ds in datasets.items()
    }
    # Equal steps on every rank (no Join, no per-step collective), where every rank knows every shard's size: with
    # FullyReplicated data. ShardedByS3Key hosts hold shards of sizes the others don't know; they keep Join.
    schedule = (
        StepSchedule.build(len(datasets["train"]), replicas, args.batch_size, 1 if args.dry_run else args.max_steps)
        if replicas == info.world_size
        else None
    )
    if schedule is not None:
        loaders["train"] = DataLoader(
            datasets["train"],
            batch_sampler=ScheduledBatchSampler(samplers["train"], schedule, replica_rank),
            num_workers=args.num_workers,
            pin_memory=cuda,
            persistent_workers=args.num_workers > 0,
        )
    loss_weights = schedule.loss_weights() if schedule is not None else None

    # Same seed on every rank so the initial weights agree even before DDP broadcasts rank 0's copy.
    net = build_model(args.arch, len(classes), args.pretrained, args.freeze_backbone, args.weights_dir).to(device)
    channels_last = cuda
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=args.learning_rate, momentum=args.momentum, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    scaler = torch.amp.GradScaler("cuda") if cuda else None

    start_epoch, history = 1, []
    best: dict[str, Any] = {"loss": float("inf"), "epoch": 0, "state": None, "bad_epochs": 0}
    stopped = False
    ckpt = _broadcast_checkpoint(load_checkpoint(args.checkpoint_dir), info)
    if ckpt is not None:
        cfg = ckpt.get("config", {})
        if cfg.get("arch") != args.arch or cfg.get("classes") != classes:
            LOGGER.warning("checkpoint in %s is for another model/dataset; starting fresh", args.checkpoint_dir)
        else:
            net.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            if scaler is not None and ckpt.get("scaler"):
                scaler.load_state_dict(ckpt["scaler"])
            set_rng_state(ckpt["rng"])
            if info.rank:
                torch.manual_seed(args.seed + 1000 * info.rank + ckpt["epoch"])
            start_epoch, history, best, stopped = ckpt["epoch"] + 1, ckpt["history"], ckpt["best"], ckpt["stopped"]
            LOGGER.info("resuming from checkpoint: epoch %d done, continuing at epoch %d", ckpt["epoch"], start_epoch)
    if info.rank and ckpt is None:
        torch.manual_seed(args.seed + 1000 * info.rank)  # distinct augmentation streams per rank

    model: nn.Module = net
    if info.enabled:
        model = DistributedDataParallel(net, device_ids=[info.local_rank] if cuda else None)

    train_steps = 1 if args.dry_run else args.max_steps
    eval_steps = 1 if args.dry_run else 0
    output_data_dir = Path(args.output_data_dir)
    epoch = start_epoch - 1
    for epoch in range(start_epoch, args.epochs + 1):
        if stopped:
            break
        samplers["train"].set_epoch(epoch)
        local, seconds = train_one_epoch(
            model, loaders["train"], optimizer, scaler, device, train_steps, channels_last, loss_weights
        )
        if args.record_shards:
            _record_shard(output_data_dir, epoch, info.rank, samplers["train"].indices()[: local.count])
        train_m = local.all_reduce(device).compute()
        seconds = max_across_ranks(seconds, device)
        train_m.update(seconds=seconds, throughput=train_m["samples"] / max(seconds, 1e-9))
        valid_m = evaluate(net, loaders["valid"], device, eval_steps, channels_last)[0].all_reduce(device).compute()
        scheduler.step()
        if is_main_process():
            log_metrics("train", epoch, train_m)
            log_metrics("valid", epoch, valid_m)
        history.append(
            {
                "epoch": epoch,
                **{f"train:{k}": v for k, v in train_m.items()},
                **{f"valid:{k}": v for k, v in valid_m.items()},
            }
        )
        if valid_m["loss"] < best["loss"]:
            best = {
                "loss": valid_m["loss"],
                "epoch": epoch,
                "bad_epochs": 0,
                "state": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
            }
        else:
            best["bad_epochs"] += 1
            if args.patience and best["bad_epochs"] >= args.patience:
                LOGGER.info("early stopping: valid loss has not improved for %d epochs", best["bad_epochs"])
                stopped = True
        if args.checkpoint_dir and is_main_process():
            save_checkpoint(
                args.checkpoint_dir,
                {
                    "epoch": epoch,
                    "model": net.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler else None,
                    "rng": rng_state(),
                    "history": history,
                    "best": best,
                    "stopped": stopped,
                    "config": {"arch": args.arch, "classes": classes, "image_size": args.image_size},
                },
            )
        barrier()

    if best["state"] is not None:
        net.load_state_dict(best["state"])
    test_acc, targets, preds = evaluate(net, loaders["test"], device, eval_steps, channels_last, collect=True)
    test_m = test_acc.all_reduce(device).compute()
    targets, preds = _gather_lists(targets), _gather_lists(preds)
    last = history[-1] if history else {}
    final_epoch = last.get("epoch", epoch)
    metrics = {
        "train:loss": last.get("train:loss", float("nan")),
        "train:top1": last.get("train:top1", float("nan")),
        "train:throughput": last.get("train:throughput", float("nan")),
        "valid:loss": best["loss"] if best["state"] is not None else last.get("valid:loss", float("nan")),
        "valid:top1": next((h["valid:top1"] for h in history if h["epoch"] == best["epoch"]), float("nan")),
        "valid:top5": next((h["valid:top5"] for h in history if h["epoch"] == best["epoch"]), float("nan")),
        "test:loss": test_m["loss"],
        "test:top1": test_m["top1"],
        "test:top5": test_m["top5"],
        "best_epoch": float(best["epoch"]),
        "epochs_run": float(final_epoch),
    }
    if is_main_process():
        # The kept epoch's validation metrics, last: SageMaker's tuning ranks a job on the final value of its
        # objective metric (kept:top1), and the model kept is this epoch's, not the last one's.
        kept = {"loss": metrics["valid:loss"], "top1": metrics["valid:top1"], "top5": metrics["valid:top5"]}
        log_metrics("kept", int(best["epoch"]) if best["state"] is not None else final_epoch, kept)
        log_metrics("test", final_epoch, test_m)
        save_artifact(Path(args.model_dir), net.state_dict(), classes, args, metrics)
        output_data_dir.mkdir(parents=True, exist_ok=True)
        (output_data_dir / "metrics.json").write_text(json.dumps({"final": metrics, "history": history}, indent=2))
        save_plots(output_data_dir, history, targets, preds, classes)
        LOGGER.info("artifact written to %s", args.model_dir)
    barrier()
    return metrics


def main(args: argparse.Namespace) -> dict[str, float]:
    """Run training; on any error write ``<output>/failure`` and re-raise so the exit status is non-zero."""
    try:
        return run(args)
    except Exception as exc:
        write_failure(args.output_dir, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        cleanup()


if __name__ == "__main__":
    main(parse_args())
