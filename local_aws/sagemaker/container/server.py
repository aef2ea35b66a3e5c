"""One endpoint instance: the inference container contract (``GET /ping``, ``POST /invocations``) in a process.

``python -m local_aws.sagemaker.container --model-dir DIR --port PORT`` loads the model with the toolkit's handler
rules (``handler.py``) and serves it on the local HTTP layer. As TorchServe does with
``SAGEMAKER_MODEL_SERVER_WORKERS``, at most that many requests run the handler at once; the rest queue.
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
from local_aws.sagemaker.container.handler import Handler
from local_aws.sagemaker.failure import clip, fold

LOGGER = logging.getLogger("local_aws.sagemaker.container")


class ContainerApp:
    """WSGI app of one instance."""

    def __init__(self, handler: Handler, workers: int) -> None:
        self.handler = handler
        self.slots = threading.Semaphore(max(1, workers))

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        if request.path == "/ping" and request.method == "GET":
            response = Response(b"", status=200, content_type="text/plain")
        elif request.path == "/invocations" and request.method == "POST":
            headers = dict(request.headers.items())
            with self.slots:
                status, payload, content_type, extra = self.handler.invoke(request.get_data(), headers)
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
    try:
        handler = Handler(args.model_dir, os.environ.get("SAGEMAKER_PROGRAM"))
    except Exception as exc:  # start-up boundary: the reason must reach the endpoint's FailureReason
        LOGGER.exception("model load failed")
        reason = clip(fold(f"{type(exc).__name__}: {exc}"), 700)
        print(f"{LOAD_FAILED_MARKER}{reason}", file=sys.stderr, flush=True)
        return 1
    workers = int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS", "1") or 1)
    server = HttpServer(
        ContainerApp(handler, workers),
        name="model-server",
        port=args.port,
        error_renderer=message_error_renderer,
        max_body_bytes=INVOKE_ENDPOINT_MAX_BYTES + 1,
        threads=max(4, workers + 2),
    )
    stop = threading.Event()
    _stop_on_sigterm(stop)
    server.start()
    LOGGER.info("model server ready on port %s (model dir %s, %d worker(s))", args.port, args.model_dir, workers)
    stop.wait()
    server.stop()
    return 0
