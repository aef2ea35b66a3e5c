"""Benchmarks (``make bench`` / ``python -m bench``): one ``name=value`` line per figure, ``#`` lines say how.

- ``scaling_efficiency``, ``scaling_ratio``, ``samples_per_epoch_ratio``: 2-rank DDP against two independent
  1-rank processes at the same time and against one alone, see ``bench/training_scaling.py``.
- ``inference_overhead_ratio``: p50 of the full handler chain (input_fn -> predict_fn -> output_fn on the JPEG bytes
  of one real photo) over p50 of the bare forward pass on the already-preprocessed tensor, same model, 1 thread.
- ``lambda_init_ratio``: the inference function's cold-start import (``import app``) over a bare boto3
  sagemaker-runtime client, fresh interpreters in Lambda's environment; see ``bench/lambda_init.py``.
- ``serve_throughput_ratio``, ``serve_p99_ms_c8``, ``serve_p99_p50_ratio_c8``: the local model container at
  concurrency 8 against the batch-1 ceiling (cores / bare-forward p50), see ``bench/serving.py``.

- ``http_overhead_ratio``, ``pipeline_overhead_ratio``, ``throughput_c8``: local runtime figures, see
  ``bench/local_runtime.py``.

Each measurement is a function returning ``(name, value)`` pairs so other figures can be appended to ``main``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.lambda_init import lambda_init_figures
from bench.serving import serving_figures
from bench.training_scaling import training_figures

REPO = Path(__file__).resolve().parent.parent
Figure = tuple[str, str]


def _comment(text: str) -> None:
    print(f"# {text}", flush=True)


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
        figures += inference_figures(work / "solo-0" / "model")
        figures += serving_figures(work, comment=lambda line: print(line, flush=True))
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
