"""Loss/accuracy accumulation across ranks and the one METRIC line format (CONTRACTS.md §2)."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from distributed import get_world_size

METRIC_LOGGER_NAME = "dogbreed.metrics"


@dataclass
class MetricAccumulator:
    """Sums over real samples only, so all-reducing the sums gives exact dataset-level means."""

    loss_sum: float = 0.0
    correct1: int = 0
    correct5: int = 0
    count: int = 0

    def update(self, logits: torch.Tensor, targets: torch.Tensor, loss_sum: torch.Tensor) -> None:
        """Add one batch; ``loss_sum`` is the summed (not averaged) per-sample cross-entropy."""
        k = min(5, logits.shape[1])
        topk = logits.topk(k, dim=1).indices
        hits = topk.eq(targets.unsqueeze(1))
        self.correct1 += int(hits[:, 0].sum().item())
        self.correct5 += int(hits.any(dim=1).sum().item())
        self.loss_sum += float(loss_sum.item())
        self.count += int(targets.shape[0])

    def all_reduce(self, device: torch.device) -> MetricAccumulator:
        """Sum the accumulators of all ranks (no-op for one process)."""
        if get_world_size() == 1:
            return self
        # float64 keeps integer counts exact far beyond any dataset size.
        buf = torch.tensor([self.loss_sum, self.correct1, self.correct5, self.count], dtype=torch.float64)
        buf = buf.to(device)
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        loss_sum, c1, c5, n = buf.tolist()
        return MetricAccumulator(loss_sum, round(c1), round(c5), round(n))

    def compute(self) -> dict[str, float]:
        """Mean per-sample loss, top-1/top-5 fractions and the sample count."""
        n = max(self.count, 1)
        return {
            "loss": self.loss_sum / n,
            "top1": self.correct1 / n,
            "top5": self.correct5 / n,
            "samples": float(self.count),
        }


def max_across_ranks(value: float, device: torch.device) -> float:
    """The largest value over ranks: an epoch lasts as long as its slowest rank."""
    if get_world_size() == 1:
        return value
    buf = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(buf, op=dist.ReduceOp.MAX)
    return float(buf.item())


def format_metric_line(split: str, epoch: int, values: dict[str, float]) -> str:
    """Render the fixed ``METRIC split=... epoch=...`` line; keys are emitted in contract order when present."""
    parts = [f"METRIC split={split} epoch={epoch}"]
    for key, fmt in (
        ("loss", "{:.6f}"),
        ("top1", "{:.6f}"),
        ("top5", "{:.6f}"),
        ("samples", "{:.0f}"),
        ("seconds", "{:.3f}"),
        ("throughput", "{:.1f}"),
    ):
        if key in values:
            parts.append(f"{key}={fmt.format(values[key])}")
    return " ".join(parts)


def metric_logger() -> logging.Logger:
    """A logger that writes bare METRIC lines to stdout, where SageMaker's metric regexes read them."""
    logger = logging.getLogger(METRIC_LOGGER_NAME)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)
    return logger


def log_metrics(split: str, epoch: int, values: dict[str, float]) -> None:
    """Emit one METRIC line (callers restrict this to rank 0)."""
    metric_logger().info(format_metric_line(split, epoch, values))
    for handler in metric_logger().handlers:
        handler.flush()
