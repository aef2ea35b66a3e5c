"""Local-runtime benchmarks for ``make bench`` (issue 4 §9): three ``name=value`` lines.

- ``http_overhead_ratio``: p50 of POST /predict over local HTTP (API Gateway emulation → the real Lambda handler →
  InvokeEndpoint → endpoint worker → model) over p50 of the bare forward pass of the same model in-process (loaded
  by the artifact's own ``code/inference.py`` model_fn), same image, same torch thread count, sampled alternately.
- ``pipeline_overhead_ratio``: wall time of a whole local execution over (training time + endpoint start time), both
  read from the job and endpoint records (TrainingStartTime→TrainingEndTime, endpoint CreationTime→InService).
- ``throughput_c8``: successful requests per second with 8 concurrent keep-alive clients (bounded request count).

The model is a real ResNet-50 (224 px, one dry-run step on the embedded data, gate 0): a model of production size
makes the overhead ratio mean what it says; a 32 px toy CNN would measure only the HTTP stack.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import statistics
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.credentials import Credentials

from local_aws.constants import REGION
from local_aws.s3.store import parse_uri
from local_aws.server import LocalAws
from ops import demo
from ops.executions import start_execution, watch
from ops.predict import build_predict_request
from ops.target import OpsError, local_target_at

BENCH_ARCH = os.environ.get("LOCAL_BENCH_ARCH", "resnet50")
BENCH_IMAGE_SIZE = int(os.environ.get("LOCAL_BENCH_IMAGE_SIZE", "224"))
HTTP_SAMPLES = int(os.environ.get("LOCAL_BENCH_HTTP_SAMPLES", "30"))
THROUGHPUT_REQUESTS = int(os.environ.get("LOCAL_BENCH_C8_REQUESTS", "48"))
CONCURRENCY = 8


def _timestamp(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    return float(value.timestamp())


def _connect(api_url: str, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(api_url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)


def _post(conn: http.client.HTTPConnection, url: str, body: bytes, credentials: Credentials) -> int:
    # The API enforces the template's IAM auth, as on AWS: every request is SigV4-signed for execute-api, the way
    # `ops predict` signs it; sent on a kept-alive connection, so the figure is the stack's, not a TCP handshake's.
    request = build_predict_request(url, body, "image/jpeg", api_key=None, credentials=credentials, region=REGION)
    conn.request("POST", "/predict", body=body, headers=dict(request.headers.items()))
    response = conn.getresponse()
    response.read()
    return response.status


def _http_call(api_url: str, credentials: Credentials) -> tuple[http.client.HTTPConnection, Callable[[bytes], None]]:
    conn = _connect(api_url, timeout=60)

    def call(image: bytes) -> None:
        status = _post(conn, f"{api_url}/predict", image, credentials)
        if status != 200:
            raise OpsError(f"bench request answered HTTP {status}")

    return conn, call


@contextlib.contextmanager
def _in_process_forward(model_tar: Path) -> Any:
    """The artifact's model (via its own ``code/inference.py`` model_fn) in this process; yields a bare-forward call."""
    import importlib.util

    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(model_tar) as tar:
            tar.extractall(tmp, filter="data")
        code = Path(tmp) / "code"
        sys.path.insert(0, str(code))
        try:
            spec = importlib.util.spec_from_file_location("bench_inference", code / "inference.py")
            if spec is None or spec.loader is None:
                raise OpsError(f"no code/inference.py in {model_tar}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            model = module.model_fn(tmp)

            tensors: dict[bytes, Any] = {}

            def call(image: bytes) -> None:
                # Bare forward: the image is decoded and preprocessed once, outside the timed call.
                if image not in tensors:
                    tensors[image] = model["transform"](module.decode_image(image)).unsqueeze(0)
                with torch.inference_mode():
                    model["net"](tensors[image])

            yield call
        finally:
            sys.path.remove(str(code))


def side_by_side_p50(
    api_url: str, credentials: Credentials, model_tar: Path, image: bytes, samples: int = HTTP_SAMPLES
) -> tuple[float, float]:
    """Median seconds of one keep-alive POST /predict and of the bare in-process forward, sampled alternately.

    Alternating the two keeps a busy machine's drift out of the ratio: both see the same background load.
    """
    conn, http_call = _http_call(api_url, credentials)
    try:
        with _in_process_forward(model_tar) as local_call:
            for _ in range(3):
                http_call(image)
                local_call(image)
            http_times: list[float] = []
            local_times: list[float] = []
            for _ in range(samples):
                for fn, times in ((http_call, http_times), (local_call, local_times)):
                    started = time.perf_counter()
                    fn(image)
                    times.append(time.perf_counter() - started)
            return statistics.median(http_times), statistics.median(local_times)
    finally:
        conn.close()


def throughput(
    api_url: str,
    credentials: Credentials,
    image: bytes,
    requests: int = THROUGHPUT_REQUESTS,
    concurrency: int = CONCURRENCY,
) -> float:
    """Successful requests per second with ``concurrency`` keep-alive clients sharing ``requests`` requests."""
    remaining = [requests]
    lock = threading.Lock()
    ok = [0]
    failures: list[int] = []

    def client() -> None:
        conn = _connect(api_url, timeout=120)
        try:
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                status = _post(conn, f"{api_url}/predict", image, credentials)
                with lock:
                    if status == 200:
                        ok[0] += 1
                    else:
                        failures.append(status)
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        print(f"throughput_c8: {len(failures)} non-200 answers: {sorted(set(failures))}", file=sys.stderr)
    return ok[0] / elapsed


def local_benchmarks(home: Path | None = None) -> list[tuple[str, float]]:
    """Run one local pipeline and measure the three local-runtime figures.

    Args:
        home: state dir for the run; a fresh temporary one by default (the bench never touches ``.local``).

    Returns:
        ``[("http_overhead_ratio", x), ("pipeline_overhead_ratio", y), ("throughput_c8", z)]``.
    """
    with contextlib.ExitStack() as stack:
        if home is None:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-local-")))
        runtime = LocalAws(home, aws_port=0, api_port=0).start()
        stack.callback(runtime.stop)
        urls = runtime.endpoints
        assert runtime.stack is not None
        target = local_target_at(runtime.layout, runtime.stack.stack_name, urls.aws_url, urls.api_url)
        cache = runtime.layout.cache
        per_class, image_size = 20, 32  # the dataset is only rendered at this size; the model resizes to 224 px
        training_data, source_dir = demo.prepare(
            target, cache, lambda _: None, per_class=per_class, image_size=image_size
        )
        execution_input = demo.execution_input(
            training_data,
            source_dir,
            instance_count=1,
            epochs=1,
            arch=BENCH_ARCH,
            image_size=BENCH_IMAGE_SIZE,
            min_test_accuracy=0.0,
            extra_hyperparameters={"dry-run": "true", "batch-size": "4"},
        )
        started = time.time()
        arn = start_execution(target, execution_input, name=f"bench-{int(started)}")
        final = watch(target, arn, lambda _: None, poll_seconds=0.5, timeout=1800)
        wall = time.time() - started
        if final.get("status") != "SUCCEEDED":
            raise OpsError(f"bench execution {final.get('status')}: {final.get('error')} {final.get('cause')}")
        output = json.loads(final.get("output") or "{}")
        client = target.client("sagemaker")
        job = client.describe_training_job(TrainingJobName=output["TrainingJobName"])
        training_s = _timestamp(job["TrainingEndTime"]) - _timestamp(job["TrainingStartTime"])
        endpoint = client.describe_endpoint(EndpointName=output["EndpointName"])
        endpoint_s = _timestamp(endpoint["LastModifiedTime"]) - _timestamp(endpoint["CreationTime"])
        test_dir = demo.rendered_dir(cache, image_size, per_class) / "test"
        image = next(iter(sorted(test_dir.glob("*/*.jpg")))).read_bytes()
        bucket, key = parse_uri(job["ModelArtifacts"]["S3ModelArtifacts"])
        model_tar = runtime.layout.s3 / bucket / key
        credentials = target.credentials()
        assert credentials is not None
        http_s, bare_s = side_by_side_p50(urls.api_url, credentials, model_tar, image)
        rps = throughput(urls.api_url, credentials, image)
        print(
            f"# local: http p50 {http_s * 1e3:.1f} ms vs in-process {bare_s * 1e3:.1f} ms ({BENCH_ARCH} "
            f"{BENCH_IMAGE_SIZE}px); pipeline {wall:.1f}s vs training {training_s:.1f}s + endpoint {endpoint_s:.1f}s",
            file=sys.stderr,
        )
        return [
            ("http_overhead_ratio", http_s / bare_s),
            ("pipeline_overhead_ratio", wall / (training_s + endpoint_s)),
            ("throughput_c8", rps),
        ]


if __name__ == "__main__":
    for name, value in local_benchmarks():
        print(f"{name}={value:.3f}")
