"""One endpoint instance: the inference container contract (``GET /ping``, ``POST /invocations``) in a process.

``python -m local_runtime.sagemaker.worker --model-dir DIR --port PORT`` loads ``<model-dir>/code/<SAGEMAKER_PROGRAM>``
under the SageMaker inference toolkit's handler rules (sagemaker-contract.md §3): ``model_fn`` / ``input_fn`` /
``predict_fn`` / ``output_fn`` (or ``transform_fn``, not both), each optionally taking a trailing ``context``; the
PyTorch defaults where a handler is absent; errors carrying ``status_code`` keep it, others become 500.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import json
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger("local_runtime.sagemaker.worker")
CONTENT_TYPE_RX = re.compile(r"^[Cc]ontent-?[Tt]ype$")
TEXT_TYPES = ("application/json", "text/csv")


class InferenceError(Exception):
    """An error with an HTTP status (shape of ``sagemaker_inference.errors.GenericInferenceToolkitError``)."""

    def __init__(self, status_code: int, message: str, phrase: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.phrase = phrase or message


class _RequestProcessor:
    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def get_request_properties(self) -> dict[str, str]:
        return dict(self._headers)

    def get_request_property(self, key: str) -> str | None:
        return self._headers.get(key)


class Context:
    """The subset of TorchServe's ``ts.context.Context`` that the inference toolkit hands to handlers."""

    def __init__(self, model_dir: str, headers: dict[str, str] | None = None) -> None:
        self.model_name = "model"
        self.manifest: dict[str, Any] = {"model": {"modelName": "model"}}
        self.system_properties: dict[str, Any] = {
            "model_dir": model_dir,
            "gpu_id": 0 if _cuda_available() else None,
            "batch_size": 1,
            "server_name": "MMS",
            "server_version": "local",
            "limit_max_image_pixels": True,
        }
        self.request_processor = [_RequestProcessor(headers or {})]
        self.response_content_type: dict[int, str] = {}
        self.response_status: tuple[int, str] | None = None
        self.response_headers: dict[str, str] = {}
        self.metrics = None

    def get_request_header(self, idx: int, key: str) -> str | None:
        return self.request_processor[idx].get_request_property(key)

    def get_all_request_header(self, idx: int) -> dict[str, str]:
        return self.request_processor[idx].get_request_properties()

    def set_response_content_type(self, idx: int, value: str) -> None:
        self.response_content_type[idx] = value

    def get_response_content_type(self, idx: int) -> str | None:
        return self.response_content_type.get(idx)

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        self.response_status = (code, phrase)

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        self.response_headers[key] = value


def _cuda_available() -> bool:
    if "torch" not in sys.modules:
        return False
    import torch

    return bool(torch.cuda.is_available())


# ----------------------------------------------------------------------------------------------- PyTorch defaults
def default_model_fn(model_dir: str) -> Any:
    """Load ``model.pt`` (or the single ``*.pt``/``*.pth``) as TorchScript, like the PyTorch toolkit's default."""
    import torch

    root = Path(model_dir)
    candidates = (
        [root / "model.pt"]
        if (root / "model.pt").is_file()
        else sorted(p for p in root.iterdir() if p.suffix in (".pt", ".pth"))
    )
    if len(candidates) != 1:
        raise ValueError(f"Expected exactly one model.pt / *.pt / *.pth in {model_dir}, found {len(candidates)}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = torch.jit.load(str(candidates[0]), map_location=device)
    return model.to(device)


def default_input_fn(input_data: Any, content_type: str) -> Any:
    """Decode JSON / CSV / NPY into a tensor (the toolkit's ``decoder.decode`` then ``torch.from_numpy``)."""
    import numpy as np
    import torch

    if content_type == "application/json":
        array = np.array(json.loads(input_data))
    elif content_type == "text/csv":
        array = np.genfromtxt(io.StringIO(input_data), delimiter=",")
    elif content_type == "application/x-npy":
        array = np.load(io.BytesIO(input_data), allow_pickle=False)
    else:
        raise InferenceError(415, f"Content type {content_type} is not supported by this framework.")
    tensor = torch.as_tensor(array)
    return tensor.to("cuda" if torch.cuda.is_available() else "cpu")


def default_predict_fn(data: Any, model: Any) -> Any:
    """``model.eval(); model(data)`` under ``no_grad``."""
    import torch

    with torch.no_grad():
        model.eval()
        return model(data)


def default_output_fn(prediction: Any, accept: str) -> Any:
    """Encode a tensor/array as JSON, CSV or NPY (first supported type in Accept)."""
    import numpy as np

    if hasattr(prediction, "detach"):
        prediction = prediction.detach().cpu().numpy()
    for content_type in (t.strip().split(";")[0] for t in accept.split(",")):
        if content_type == "application/json":
            return json.dumps(np.asarray(prediction).tolist())
        if content_type == "text/csv":
            out = io.StringIO()
            np.savetxt(out, np.atleast_2d(prediction), delimiter=",", fmt="%s")
            return out.getvalue()
        if content_type == "application/x-npy":
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(prediction))
            return buffer.getvalue()
    raise InferenceError(406, f"Accept type {accept} is not supported by this framework.")


# ----------------------------------------------------------------------------------------------- handler contract
def _bind(fn: Callable[..., Any], arity: int, name: str) -> tuple[Callable[..., Any], bool]:
    """Accept ``arity`` args or ``arity + 1`` (trailing context); anything else is a TypeError (toolkit rule)."""
    count = len(inspect.signature(fn).parameters)
    if count == arity:
        return fn, False
    if count == arity + 1:
        return fn, True
    raise TypeError(f"{name} must take {arity} arguments, or {arity + 1} with a trailing context; it takes {count}")


class Handler:
    """Resolves the user's module against the toolkit's rules and runs requests through it.

    Args:
        model_dir: the extracted model.tar.gz.
        program: ``SAGEMAKER_PROGRAM`` (default ``inference.py``).
    """

    def __init__(self, model_dir: str, program: str | None = None) -> None:
        self.model_dir = model_dir
        code_dir = Path(model_dir) / "code"
        module_name = (program or "inference.py").removesuffix(".py")
        module: Any = None
        if (code_dir / f"{module_name}.py").is_file():
            sys.path.insert(0, str(code_dir))
            # One model per process in a worker; dropping a cached module keeps in-process reuse (tests) honest.
            sys.modules.pop(module_name, None)
            module = importlib.import_module(module_name)
        elif program:
            raise ImportError(f"SAGEMAKER_PROGRAM {program!r} not found in {code_dir}")

        def user(name: str) -> Callable[..., Any] | None:
            fn = getattr(module, name, None) if module is not None else None
            return fn if callable(fn) else None

        transform = user("transform_fn")
        if transform and any(user(n) for n in ("input_fn", "predict_fn", "output_fn")):
            raise ValueError(
                "Cannot use transform_fn implementation in conjunction with input_fn, predict_fn, and/or output_fn "
                "implementation"
            )
        self.transform = _bind(transform, 4, "transform_fn") if transform else None
        self.model_fn = _bind(user("model_fn") or default_model_fn, 1, "model_fn")
        self.input_fn = _bind(user("input_fn") or default_input_fn, 2, "input_fn")
        self.predict_fn = _bind(user("predict_fn") or default_predict_fn, 2, "predict_fn")
        self.output_fn = _bind(user("output_fn") or default_output_fn, 2, "output_fn")
        context = Context(model_dir)
        pre = user("pre_model_fn")
        if pre:
            pre(model_dir)
        self.model = self._call(self.model_fn, context, model_dir)
        warmup = user("model_warmup_fn")
        if warmup:
            warmup(model_dir, self.model)

    @staticmethod
    def _call(bound: tuple[Callable[..., Any], bool], context: Context, *args: Any) -> Any:
        fn, wants_context = bound
        return fn(*args, context) if wants_context else fn(*args)

    def invoke(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str, dict[str, str]]:
        """Run one request; returns (status, body, content type, extra headers)."""
        context = Context(self.model_dir, headers)
        content_type = next((v for k, v in headers.items() if CONTENT_TYPE_RX.match(k)), None) or "application/json"
        accept = headers.get("Accept") or headers.get("accept") or ""
        if not accept or accept == "*/*":
            accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json")
        data: Any = body.decode("utf-8") if content_type in TEXT_TYPES else body
        try:
            if self.transform:
                result = self._call(self.transform, context, self.model, data, content_type, accept)
            else:
                decoded = self._call(self.input_fn, context, data, content_type)
                prediction = self._call(self.predict_fn, context, decoded, self.model)
                result = self._call(self.output_fn, context, prediction, accept)
        except Exception as exc:  # the container boundary: every handler error becomes an HTTP status
            trace = traceback.format_exc()
            status = getattr(exc, "status_code", None)
            status = status if isinstance(status, int) and 400 <= status <= 599 else 500
            message = getattr(exc, "message", None) or str(exc)
            LOGGER.error("invocation failed (%s): %s\n%s", status, message, trace)
            return status, f"{message}\n{trace}".encode(), "text/plain", {}
        response_type = accept
        if isinstance(result, tuple) and len(result) == 2:
            result, response_type = result
        response_type = context.get_response_content_type(0) or response_type
        if isinstance(result, str):
            payload = result.encode("utf-8")
        elif isinstance(result, bytes | bytearray):
            payload = bytes(result)
        else:
            payload = json.dumps(result).encode("utf-8")
        status = context.response_status[0] if context.response_status else 200
        return status, payload, response_type, context.response_headers


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    handler: Handler
    slots: threading.Semaphore


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # NOTE: http.server writes the headers and the body in separate send() calls; with Nagle on, a keep-alive
    # client's delayed ACK then stalls every response by ~40 ms on Linux. TCP_NODELAY removes the stall.
    disable_nagle_algorithm = True
    server: _Server

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/ping":
            self._send(200, b"", "text/plain")
        else:
            self._send(404, b'{"message": "Not found"}', "application/json")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path != "/invocations":
            self._send(404, b'{"message": "Not found"}', "application/json")
            return
        headers = dict(self.headers.items())
        # TorchServe runs SAGEMAKER_MODEL_SERVER_WORKERS handler workers; more requests queue.
        with self.server.slots:
            status, payload, content_type, extra = self.server.handler.invoke(body, headers)
        self._send(status, payload, content_type, extra)

    def log_message(self, format: str, *args: Any) -> None:
        LOGGER.debug(format, *args)


def main(argv: list[str] | None = None) -> int:
    """Load the model, then serve until terminated."""
    parser = argparse.ArgumentParser(description="Local SageMaker endpoint instance")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")))
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    try:
        handler = Handler(args.model_dir, os.environ.get("SAGEMAKER_PROGRAM"))
    except Exception as exc:  # start-up boundary: the reason must reach the endpoint's FailureReason
        LOGGER.error("model load failed: %s: %s\n%s", type(exc).__name__, exc, traceback.format_exc())
        print(f"WORKER_FAILED {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    server = _Server((args.host, args.port), _RequestHandler)
    server.handler = handler
    server.slots = threading.Semaphore(max(1, int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS", "1") or 1)))
    LOGGER.info("worker ready on %s:%s (model dir %s)", args.host, args.port, args.model_dir)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.2)
    return 0


def _on_sigterm(signum: int, frame: Any) -> None:
    # SIGTERM is SageMaker's stop signal; the endpoint drains requests before sending it.
    raise KeyboardInterrupt


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)
    sys.exit(main())
