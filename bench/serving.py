"""Serving figures for ``make bench`` (issue 10 §1): the local model container at concurrency 8 against the batch-1
ceiling of the machine, measured side by side in one run.

- ``serve_throughput_ratio``: successful requests/s of a closed loop of 8 keep-alive clients on the container's
  ``/invocations`` URL (one real JPEG, ResNet-18 at 224 px), over the batch-1 ceiling ``cores / bare-forward p50``
  (one preprocessed image, 1 torch thread, in this process); the median over rounds that alternate the two.
- ``serve_p99_ms_c8`` and ``serve_p99_p50_ratio_c8``: the latency tail of those requests.

The container runs as an endpoint instance does (``python -m local_aws.sagemaker.container``, ``OMP_NUM_THREADS=1``
as the fleet sets it), with its default worker count (one per logical CPU). The weights are freshly initialised:
a forward pass costs the same trained or not, and no download is needed. A client of our own (a thread pool of
``http.client`` connections) rather than a load tool: it is the same closed loop as ``throughput_c8`` and needs no
extra dependency.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_aws.constants import REPO_ROOT
from local_aws.sagemaker.container.config import logical_cpus
from local_aws.sagemaker.fleet import ping_port
from local_aws.sagemaker.training.runner import free_port

ARCH, IMAGE_SIZE, CLASSES = "resnet18", 224, 120
CONCURRENCY = 8
REQUESTS = int(os.environ.get("LOCAL_BENCH_SERVE_REQUESTS", "240"))
FORWARD_SAMPLES = int(os.environ.get("LOCAL_BENCH_SERVE_FORWARDS", "48"))
ROUNDS = 3
Figure = tuple[str, str]


@dataclass
class Round:
    bare_p50: float  # seconds per bare batch-1 forward
    rps: float
    latencies: list[float]


def build_model_dir(root: Path) -> Path:
    """An artifact in train.py's layout (model.pth, classes.json, metadata.json, code/) with random weights."""
    import torch

    sys.path.insert(0, str(REPO_ROOT / "training"))
    import model as arch

    torch.manual_seed(0)
    net = arch.create_model(ARCH, CLASSES)
    (root / "code").mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), root / "model.pth")
    (root / "classes.json").write_text(json.dumps([f"{i:03d}.breed" for i in range(CLASSES)]))
    metadata = {"arch": ARCH, "image_size": IMAGE_SIZE, "num_classes": CLASSES, "model_version": "bench"}
    (root / "metadata.json").write_text(json.dumps(metadata))
    for name in ("inference.py", "model.py"):
        (root / "code" / name).write_bytes((REPO_ROOT / "training" / name).read_bytes())
    return root


def bare_forward_samples(model_dir: Path, photo: bytes, repeats: int) -> list[float]:
    """Seconds per batch-1 forward pass of the preprocessed photo, 1 thread, after 3 warm-up passes."""
    import torch

    sys.path.insert(0, str(REPO_ROOT / "training"))
    import inference

    torch.set_num_threads(1)
    model = inference.model_fn(str(model_dir))
    tensor = model["transform"](inference.decode_image(photo)).unsqueeze(0)
    samples = []
    with torch.inference_mode():
        for i in range(repeats + 3):
            start = time.perf_counter()
            model["net"](tensor)
            if i >= 3:
                samples.append(time.perf_counter() - start)
    return samples


@contextmanager
def container(model_dir: Path, log: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    """The model container on a free port, until the block ends; yields the port once /ping answers 200."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    environ.update(env or {}, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    argv = [sys.executable, "-m", "local_aws.sagemaker.container", "--model-dir", str(model_dir), "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=environ, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not ping_port(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"model container did not start; see {log}")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def closed_loop(port: int, body: bytes, requests: int, concurrency: int = CONCURRENCY) -> tuple[float, list[float]]:
    """``concurrency`` clients, each sending its next request when the last is answered, ``requests`` in all.

    Returns:
        (successful requests per second, latencies in seconds of the successful ones).

    Raises:
        RuntimeError: a request got another status than 200.
    """
    remaining = [requests]
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[int] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            while True:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                start = time.perf_counter()
                conn.request("POST", "/invocations", body=body, headers={"Content-Type": "image/jpeg"})
                response = conn.getresponse()
                response.read()
                elapsed = time.perf_counter() - start
                with lock:
                    (latencies.append(elapsed) if response.status == 200 else failures.append(response.status))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} serving requests failed: statuses {sorted(set(failures))}")
    return len(latencies) / wall, latencies


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def _rounds(model_dir: Path, photo: bytes, log: Path, env: dict[str, str] | None = None) -> list[Round]:
    """ROUNDS alternations of (bare forward samples, closed loop on the container), one container throughout.

    NOTE: alternating, so that the ceiling and the served rate of a round share the host's load of the moment; on a
    shared machine the load drifts over the minute a whole run takes.
    """
    rounds = []
    with container(model_dir, log, env) as port:
        closed_loop(port, photo, 2 * CONCURRENCY)  # warm-up: every worker has run the model
        for _ in range(ROUNDS):
            forward = bare_forward_samples(model_dir, photo, FORWARD_SAMPLES // ROUNDS)
            rps, latencies = closed_loop(port, photo, REQUESTS // ROUNDS)
            rounds.append(Round(statistics.median(forward), rps, latencies))
    return rounds


def serving_figures(work: Path, comment: Any = print) -> list[Figure]:
    """serve_throughput_ratio (median over rounds), serve_p99_ms_c8, serve_p99_p50_ratio_c8 (pooled latencies).

    A second container with TorchServe batching (``SAGEMAKER_TS_BATCH_SIZE=8``, 20 ms delay, one worker per CPU) is
    measured on a ``#`` line only: the toolkit runs input_fn/predict_fn/output_fn once per request even inside a
    batch (aws-failure-behaviours.md §10), so it cannot batch the forward pass, and the figures stay the default's.
    """
    from tools.dataset import sample_photo

    model_dir = build_model_dir(work / "serve-model")
    photo = sample_photo(work / "serve-photo.jpg").read_bytes()
    cores = logical_cpus()
    batching = {
        "SAGEMAKER_TS_BATCH_SIZE": "8",
        "SAGEMAKER_TS_MAX_BATCH_DELAY": "20",
        "SAGEMAKER_TS_MIN_WORKERS": str(cores),
        "SAGEMAKER_TS_MAX_WORKERS": str(cores),
    }
    lines, ratios = [], {}
    for label, env in (("default", None), ("batched", batching)):
        rounds = _rounds(model_dir, photo, work / f"serve-container-{label}.log", env)
        latencies = [t for r in rounds for t in r.latencies]
        p50, p99 = statistics.median(latencies), _quantile(latencies, 0.99)
        per_round = [r.rps * r.bare_p50 / cores for r in rounds]
        ratios[label] = (statistics.median(per_round), p99, p50)
        lines.append(
            f"{statistics.median(r.rps for r in rounds):.1f} req/s, p50 {p50 * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms, "
            f"bare forward p50 {statistics.median(r.bare_p50 for r in rounds) * 1e3:.1f} ms, ratio per round "
            + " ".join(f"{x:.2f}" for x in per_round)
        )
    comment(
        f"# serving: {ARCH} {IMAGE_SIZE}px, one {len(photo)}-byte JPEG, closed loop c{CONCURRENCY} on /invocations of "
        f"the local model container ({cores} workers = logical CPUs, OMP_NUM_THREADS=1), {ROUNDS} rounds of "
        f"{REQUESTS // ROUNDS} requests each alternating with {FORWARD_SAMPLES // ROUNDS} bare batch-1 forwards "
        f"(1 thread, in the bench process; ceiling = {cores} / their p50); load average {os.getloadavg()[0]:.1f}"
    )
    comment(f"# serving, no TorchServe batching (the figures): {lines[0]}")
    comment(f"# serving, SAGEMAKER_TS_BATCH_SIZE=8 / MAX_BATCH_DELAY=20 / {cores} workers (for comparison): {lines[1]}")
    ratio, p99, p50 = ratios["default"]
    return [
        ("serve_throughput_ratio", f"{ratio:.2f}"),
        ("serve_p99_ms_c8", f"{p99 * 1e3:.0f}"),
        ("serve_p99_p50_ratio_c8", f"{p99 / p50:.2f}"),
    ]


if __name__ == "__main__":  # python -m bench.serving: the serving figures alone
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        for name, value in serving_figures(Path(tmp), comment=lambda line: print(line, flush=True)):
            print(f"{name}={value}", flush=True)
