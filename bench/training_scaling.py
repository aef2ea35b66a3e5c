"""Training figures of ``make bench``: how well 2-rank DDP uses two cores, measured side by side.

- ``scaling_efficiency``: the 2-rank DDP run's throughput over the summed throughput of two independent 1-rank
  processes run at the same time on the same data. The pair is the physical reference: it is what two cores deliver
  with no synchronisation at all, on this host, at this moment. 1.00 means DDP costs nothing over that.
- ``scaling_ratio``: the DDP run's throughput over one 1-rank process running alone (ideal 2.0 on 2 idle cores).
- ``samples_per_epoch_ratio``: in the DDP run, the sample indices each rank trained on in one epoch (train.py
  ``--record-shards``), summed over ranks, over the train-split size: 1.00 means every sample exactly once.

Each repeat runs a triple (solo, independent pair, DDP), in alternating order so that drift in the host's speed
does not always favour the same member; the median over ``REPEATS`` triples is reported. Throughput is train.py's own
``METRIC split=train ... throughput=`` (samples/s summed over ranks), the median of the epochs after the first, which
pays start-up. Epochs are sized (64 px images) to last >= 10 s, so one scheduler hiccup is a small share of one.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRAIN_PY = REPO / "training" / "train.py"
REPEATS = 5
EPOCHS = 3
MIN_EPOCH_SECONDS = 10.0
TRAIN_ARGS = [
    "--arch", "smallcnn", "--epochs", str(EPOCHS),
    # Per rank, in every run: the pair and the DDP group process the same per-process batches.
    "--batch-size", "64",
    # 64 px makes an epoch of the embedded digits last >= 10 s on one core (32 px: ~3 s).
    "--image-size", "64",
    "--augment", "crop", "--learning-rate", "0.05", "--num-workers", "0", "--pretrained", "none",
    "--record-shards", "true",
]  # fmt: skip
Figure = tuple[str, str]


def _comment(text: str) -> None:
    print(f"# {text}", flush=True)


def _start(root: Path, data: Path, nproc: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "RANK", "WORLD_SIZE", "LOCAL_"))}
    env.update(
        OMP_NUM_THREADS="1",
        SM_MODEL_DIR=str(root / "model"),
        SM_OUTPUT_DIR=str(root / "output"),
        SM_OUTPUT_DATA_DIR=str(root / "output" / "data"),
        SM_CHANNEL_TRAINING=str(data),
    )
    root.mkdir(parents=True, exist_ok=True)
    launcher = [sys.executable]
    if nproc > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    return subprocess.Popen(
        [*launcher, str(TRAIN_PY), *TRAIN_ARGS], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _wait(proc: subprocess.Popen[str], what: str) -> str:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"train.py ({what}) failed:\n{err[-2000:]}")
    return out


def _epochs(stdout: str) -> list[tuple[float, float]]:
    """(throughput, seconds) of each train epoch after the first."""
    found = []
    for epoch in range(2, EPOCHS + 1):
        match = re.search(
            rf"^METRIC split=train epoch={epoch} .*?seconds=([0-9.]+) throughput=([0-9.]+)", stdout, re.MULTILINE
        )
        if not match:
            raise RuntimeError(f"no train METRIC line with seconds and throughput for epoch {epoch}")
        found.append((float(match.group(2)), float(match.group(1))))
    return found


def _steady(stdout: str) -> tuple[float, float]:
    """Median throughput and median epoch seconds of the epochs after the first."""
    epochs = _epochs(stdout)
    return statistics.median(t for t, _ in epochs), statistics.median(s for _, s in epochs)


def training_figures(work: Path) -> list[Figure]:
    """scaling_efficiency, scaling_ratio and samples_per_epoch_ratio (module docstring); leaves solo-0/model."""
    from tools.dataset import render_digits

    data = render_digits(work / "data", size=64, seed=0)
    n_train = sum(1 for _ in (data / "train").rglob("*.jpg"))
    _comment(f"OMP_NUM_THREADS=1 python training/train.py {' '.join(TRAIN_ARGS)}  (DDP: torchrun --nproc_per_node=2)")
    efficiencies, ratios, epoch_seconds = [], [], []
    for rep in range(REPEATS):
        results: dict[str, float] = {}

        def solo(rep: int = rep, results: dict[str, float] = results) -> None:
            results["solo"], seconds = _steady(_wait(_start(work / f"solo-{rep}", data, 1), "solo"))
            epoch_seconds.append(seconds)

        def pair(rep: int = rep, results: dict[str, float] = results) -> None:
            procs = [_start(work / f"pair-{rep}-{i}", data, 1) for i in range(2)]
            results["pair"] = sum(_steady(_wait(p, "independent pair"))[0] for p in procs)

        def ddp(rep: int = rep, results: dict[str, float] = results) -> None:
            results["ddp"] = _steady(_wait(_start(work / f"ddp-{rep}", data, 2), "2-rank DDP"))[0]

        order = (solo, pair, ddp) if rep % 2 == 0 else (ddp, pair, solo)
        for run in order:
            run()
        efficiencies.append(results["ddp"] / results["pair"])
        ratios.append(results["ddp"] / results["solo"])
        _comment(
            f"triple {rep + 1} ({'solo, pair, DDP' if rep % 2 == 0 else 'DDP, pair, solo'}): solo "
            f"{results['solo']:.1f}, independent pair {results['pair']:.1f}, DDP {results['ddp']:.1f} samples/s -> "
            f"efficiency {efficiencies[-1]:.2f}, ratio {ratios[-1]:.2f}"
        )
    median_epoch = statistics.median(epoch_seconds)
    _comment(
        f"train split {n_train}, per-rank batch 64, 64 px, median solo epoch {median_epoch:.1f} s"
        + ("" if median_epoch >= MIN_EPOCH_SECONDS else f" (below the {MIN_EPOCH_SECONDS:.0f} s target: noisier)")
        + f", cpu cores visible {os.cpu_count()}"
    )
    shards_dir = work / f"ddp-{REPEATS - 1}" / "output" / "data" / "shards"
    shards = [json.loads((shards_dir / f"epoch-2-rank-{r}.json").read_text()) for r in range(2)]
    seen = sum(len(s) for s in shards)
    unique = len(set(shards[0]) | set(shards[1]))
    _comment(f"epoch 2 shards: rank0 {len(shards[0])}, rank1 {len(shards[1])}, unique {unique}, dataset {n_train}")
    return [
        ("scaling_efficiency", f"{statistics.median(efficiencies):.2f}"),
        ("scaling_ratio", f"{statistics.median(ratios):.2f}"),
        ("samples_per_epoch_ratio", f"{seen / n_train:.2f}"),
    ]
