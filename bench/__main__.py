"""Benchmarks (``make bench`` / ``python -m bench``): one ``name=value`` line per figure, ``#`` lines say how.

- ``scaling_ratio``: train.py throughput (samples/s summed over ranks, median of epochs 2+ so start-up is excluded)
  of 2 ranks x 1 thread (torchrun, gloo DDP) over 1 rank x 1 thread, same data and per-rank batch; the two runs
  alternate three times and the median ratio is reported.
  With 2 cores and nothing else running the ideal is 2.0; on a shared machine it measures the contention too.
- ``samples_per_epoch_ratio``: in the 2-rank run, the sample indices each rank actually trained on in one epoch
  (recorded by train.py ``--record-shards``), summed over ranks, over the train-split size. Duplicated (padded)
  indices would count twice, so 1.00 means every sample exactly once.
- ``inference_overhead_ratio``: p50 of the full handler chain (input_fn -> predict_fn -> output_fn on the JPEG bytes
  of one real photo) over p50 of the bare forward pass on the already-preprocessed tensor, same model, 1 thread.

- ``lambda_init_ratio``: the inference function's cold-start import (``import app``) over a bare boto3
  sagemaker-runtime client, fresh interpreters in Lambda's environment; see ``bench/lambda_init.py``.
- ``http_overhead_ratio``, ``pipeline_overhead_ratio``, ``throughput_c8``: local runtime figures, see
  ``bench/local_runtime.py``.

Each measurement is a function returning ``(name, value)`` pairs so other figures can be appended to ``main``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.lambda_init import lambda_init_figures

REPO = Path(__file__).resolve().parent.parent
TRAIN_PY = REPO / "training" / "train.py"
TRAIN_ARGS = [
    "--arch",
    "smallcnn",
    "--epochs",
    "3",
    "--batch-size",
    # Per rank, in both runs. The small CNN's step at 32 px is short, so at batch 32 each step's gloo all-reduce and
    # Join handshake are a large share of it; 64 amortizes them.
    "64",
    "--image-size",
    "32",
    "--augment",
    "crop",
    "--learning-rate",
    "0.05",
    "--num-workers",
    "0",
    "--pretrained",
    "none",
    "--record-shards",
    "true",
]
Figure = tuple[str, str]


def _comment(text: str) -> None:
    print(f"# {text}", flush=True)


def _train(root: Path, data: Path, nproc: int) -> str:
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
    cmd = [*launcher, str(TRAIN_PY), *TRAIN_ARGS]
    _comment(f"OMP_NUM_THREADS=1 {' '.join(Path(c).name if c == sys.executable else c for c in cmd)}")
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"train.py ({nproc} ranks) failed:\n{proc.stderr[-2000:]}")
    return proc.stdout


def _throughput(stdout: str, epoch: int) -> float:
    match = re.search(rf"^METRIC split=train epoch={epoch} .*?throughput=([0-9.]+)", stdout, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no train METRIC line for epoch {epoch}")
    return float(match.group(1))


SCALING_REPEATS = 3


def _steady_throughput(stdout: str) -> float:
    """Median train throughput over the epochs after the first (which pays start-up costs)."""
    epochs = int(TRAIN_ARGS[TRAIN_ARGS.index("--epochs") + 1])
    return statistics.median(_throughput(stdout, epoch) for epoch in range(2, epochs + 1))


def training_figures(work: Path) -> list[Figure]:
    """scaling_ratio and samples_per_epoch_ratio from 1-rank and 2-rank runs on the embedded dataset.

    The two runs alternate ``SCALING_REPEATS`` times and the median ratio is reported: on a shared 2-vCPU VM the
    speed of a run drifts by tens of percent, so one pair of short runs can land anywhere.
    """
    from tools.dataset import render_digits

    data = render_digits(work / "data", size=32, seed=0)
    n_train = sum(1 for _ in (data / "train").rglob("*.jpg"))
    ratios = []
    for rep in range(SCALING_REPEATS):
        one = _steady_throughput(_train(work / f"r1-{rep}", data, 1))
        two = _steady_throughput(_train(work / f"r2-{rep}", data, 2))
        ratios.append(two / one)
        _comment(
            f"repeat {rep + 1}: 1 rank {one:.1f} samples/s, 2 ranks {two:.1f} samples/s, ratio {two / one:.2f} "
            f"(median of epochs 2+; train split {n_train}, per-rank batch "
            f"{TRAIN_ARGS[TRAIN_ARGS.index('--batch-size') + 1]}, cpu cores visible {os.cpu_count()})"
        )
    two_root = work / f"r2-{SCALING_REPEATS - 1}"
    shards = [
        json.loads((two_root / "output" / "data" / "shards" / f"epoch-2-rank-{r}.json").read_text()) for r in range(2)
    ]
    seen = sum(len(s) for s in shards)
    unique = len(set(shards[0]) | set(shards[1]))
    _comment(f"epoch 2 shards: rank0 {len(shards[0])}, rank1 {len(shards[1])}, unique {unique}, dataset {n_train}")
    return [
        ("scaling_ratio", f"{statistics.median(ratios):.2f}"),
        ("samples_per_epoch_ratio", f"{seen / n_train:.2f}"),
    ]


def _p50(fn: Callable[[], object], repeats: int) -> float:
    for _ in range(3):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def inference_figures(model_dir: Path, repeats: int = 30) -> list[Figure]:
    """inference_overhead_ratio for one real photo through the handler chain vs the bare forward pass."""
    import torch

    sys.path.insert(0, str(REPO / "training"))
    import inference
    from tools.dataset import sample_photo

    torch.set_num_threads(1)
    model = inference.model_fn(str(model_dir))
    with tempfile.TemporaryDirectory() as tmp:
        photo = sample_photo(Path(tmp) / "china.jpg").read_bytes()
    net = model["net"]
    tensor = model["transform"](inference.decode_image(photo)).unsqueeze(0)

    def chain() -> object:
        return inference.output_fn(inference.predict_fn(inference.input_fn(photo, "image/jpeg"), model), None)

    def bare() -> object:
        with torch.inference_mode():
            return net(tensor)

    chain_p50, bare_p50 = _p50(chain, repeats), _p50(bare, repeats)
    _comment(
        f"inference ({model['metadata']['arch']}, {model['metadata']['image_size']}px, 640x427 JPEG "
        f"{len(photo)} bytes, {repeats} runs): handler chain p50 {chain_p50 * 1e3:.2f} ms, "
        f"bare forward p50 {bare_p50 * 1e3:.2f} ms"
    )
    return [("inference_overhead_ratio", f"{chain_p50 / bare_p50:.2f}")]


def main(argv: Sequence[str] | None = None) -> int:
    """Run every benchmark and print its lines."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", help="working directory (default: a temporary one)")
    parser.add_argument(
        "--skip-local", action="store_true", help="skip the local-runtime figures (http/pipeline overhead, c8)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        figures = training_figures(work)
        figures += inference_figures(work / "r1-0" / "model")
    figures += lambda_init_figures()
    if not args.skip_local:
        from bench.local_runtime import local_benchmarks

        _comment("local runtime: one pipeline (ResNet-50, 224 px, dry-run step) in a fresh LOCAL_RUNTIME_HOME")
        figures += [(name, f"{value:.2f}") for name, value in local_benchmarks()]
    for name, value in figures:
        print(f"{name}={value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
