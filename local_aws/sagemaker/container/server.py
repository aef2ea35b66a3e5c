"""One endpoint instance: the inference container contract (``GET /ping``, ``POST /invocations``) in a process.

``python -m local_aws.sagemaker.container --model-dir DIR --port PORT`` is TorchServe's frontend in small: it starts
the model workers the environment asks for (``config.py``: ``SAGEMAKER_MODEL_SERVER_WORKERS``, default one per
logical CPU; the ``SAGEMAKER_TS_*`` batch settings), each loading the model with the toolkit's handler rules
(``handler.py``), and serves them on the local HTTP layer (``pool.py`` queues, batches and restarts). ``/ping``
reports the workers' health as TorchServe's does.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterable
from typing import Any

from werkzeug.wrappers import Request, Response

from local_aws.constants import INVOKE_ENDPOINT_MAX_BYTES
from local_aws.http.server import HttpServer, message_error_renderer
from local_aws.sagemaker.container import LOAD_FAILED_MARKER
from local_aws.sagemaker.container.config import ServingConfig, serving_config
from local_aws.sagemaker.container.pool import ModelLoadError, WorkerPool

LOGGER = logging.getLogger("local_aws.sagemaker.container")


class ContainerApp:
    """WSGI app of one instance."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool

    def ping(self) -> Response:
        # TorchServe's /ping: "Healthy" when every worker is up, "Partial Healthy" (still 200) when some are,
        # "Unhealthy" with 500 when none is (pytorch/serve ApiUtils.getWorkerStatus, read from memory: UNCONFIRMED).
        healthy, wanted = self.pool.healthy(), len(self.pool.workers)
        status = "Healthy" if healthy >= wanted else "Partial Healthy" if healthy else "Unhealthy"
        return Response(json.dumps({"status": status}), status=200 if healthy else 500, content_type="application/json")

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        if request.path == "/ping" and request.method == "GET":
            response = self.ping()
        elif request.path == "/invocations" and request.method == "POST":
            status, payload, content_type, extra = self.pool.submit(request.get_data(), dict(request.headers.items()))
            response = Response(payload, status=status, content_type=content_type)
            for key, value in extra.items():
                response.headers[key] = value
        else:
            response = Response(json.dumps({"message": "Not found"}), status=404, content_type="application/json")
        return response(environ, start_response)


def _stop_on_sigterm(stop: threading.Event) -> None:
    # SIGTERM is SageMaker's stop signal; the endpoint drains requests before sending it.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())


def main(argv: list[str] | None = None) -> int:
    """Load the model, then serve until terminated."""
    parser = argparse.ArgumentParser(description="Local SageMaker endpoint instance")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    program = os.environ.get("SAGEMAKER_PROGRAM")
    try:
        config: ServingConfig = serving_config(os.environ)
        pool = WorkerPool(args.model_dir, program, config)
        pool.start()
    except (ValueError, ModelLoadError) as exc:  # start-up boundary: the reason must reach the FailureReason
        LOGGER.error("model server failed to start: %s", exc)
        print(f"{LOAD_FAILED_MARKER}{exc}", file=sys.stderr, flush=True)
        return 1
    server = HttpServer(
        ContainerApp(pool),
        name="model-server",
        port=args.port,
        error_renderer=message_error_renderer,
        max_body_bytes=INVOKE_ENDPOINT_MAX_BYTES + 1,
        # Every queued request holds an HTTP thread while it waits for a worker, as Netty holds its channel; the
        # spare threads keep /ping answering (health checks time out after 2 s) while callers queue.
        threads=2 * config.workers * config.batch_size + 16,
    )
    stop = threading.Event()
    _stop_on_sigterm(stop)
    server.start()
    LOGGER.info(
        "model server ready on port %s (model dir %s, %d worker(s), batch size %d, max batch delay %d ms)",
        args.port,
        args.model_dir,
        config.workers,
        config.batch_size,
        config.max_batch_delay_ms,
    )
    stop.wait()
    server.stop()
    pool.stop()
    return 0
