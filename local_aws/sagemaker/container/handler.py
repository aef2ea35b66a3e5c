"""The SageMaker PyTorch inference toolkit's handler contract, as pure Python (no TorchServe, no Java).

Loads ``<model-dir>/code/<SAGEMAKER_PROGRAM>`` under the toolkit's rules (sagemaker-contract.md §3): ``model_fn`` /
``input_fn`` / ``predict_fn`` / ``output_fn`` (or ``transform_fn``, not both), each optionally taking a trailing
``context``; the PyTorch defaults where a handler is absent; errors carrying ``status_code`` keep it, others become
500. Unlike the toolkit, the response body never carries the traceback (it goes to the instance's log): no internal
path or exception name reaches a caller.
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger("local_aws.sagemaker.container")
CONTENT_TYPE_RX = re.compile(r"^[Cc]ontent-?[Tt]ype$")
TEXT_TYPES = ("application/json", "text/csv")
Reply = tuple[int, bytes, str, dict[str, str]]  # status, body, content type, extra headers


class ToolkitError(Exception):
    """An error with an HTTP status: the shape of ``sagemaker_inference.errors.GenericInferenceToolkitError``."""

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
    """The subset of TorchServe's ``ts.context.Context`` that the inference toolkit hands to handlers.

    Args:
        model_dir: the extracted model.tar.gz.
        headers: the request's headers.
        cuda: whether torch can use a GPU (``gpu_id`` 0, else None); None asks torch now, if it is loaded.
    """

    def __init__(
        self,
        model_dir: str,
        headers: dict[str, str] | None = None,
        cuda: bool | None = None,
        batch: list[dict[str, str]] | None = None,
        batch_size: int = 1,
    ) -> None:
        self.model_name = "model"
        self.manifest: dict[str, Any] = {"model": {"modelName": "model"}}
        self.system_properties: dict[str, Any] = {
            "model_dir": model_dir,
            "gpu_id": 0 if (_cuda_available() if cuda is None else cuda) else None,
            "batch_size": batch_size,
            "server_name": "MMS",
            "server_version": "local",
            "limit_max_image_pixels": True,
        }
        # One request processor per request of the TorchServe batch, in arrival order.
        self.request_processor = [_RequestProcessor(h) for h in (batch if batch else [headers or {}])]
        self.response_content_type: dict[int, str] = {}
        self.response_status: dict[int, tuple[int, str]] = {}
        self.response_headers: dict[int, dict[str, str]] = {}
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
        self.response_status[idx] = (code, phrase)

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        self.response_headers.setdefault(idx, {})[key] = value


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
        raise ToolkitError(415, f"Content type {content_type} is not supported by this framework.")
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
    raise ToolkitError(406, f"Accept type {accept} is not supported by this framework.")


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

    def __init__(self, model_dir: str, program: str | None = None, batch_size: int = 1) -> None:
        self.model_dir = model_dir
        self.batch_size = batch_size
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
        self._cuda: bool | None = None  # unknown until torch is loaded
        self._cuda_now()

    def _cuda_now(self) -> bool:
        """Whether torch can use a GPU, for the requests' Contexts: asked once, as soon as torch is loaded.

        NOTE: the answer of torch.cuda.is_available() does not change while the process runs, so one call serves
        every request's Context. The model loading torch (as the default model_fn does) settles it in __init__;
        until torch is loaded no handler can be using a GPU: False, as before.
        """
        if self._cuda is None:
            if "torch" not in sys.modules:
                return False
            self._cuda = _cuda_available()
        return self._cuda

    @staticmethod
    def _call(bound: tuple[Callable[..., Any], bool], context: Context, *args: Any) -> Any:
        fn, wants_context = bound
        return fn(*args, context) if wants_context else fn(*args)

    def invoke(self, body: bytes, headers: dict[str, str]) -> Reply:
        """Run one request; returns (status, body, content type, extra headers)."""
        return self.invoke_batch([(body, headers)])[0]

    def invoke_batch(self, requests: list[tuple[bytes, dict[str, str]]]) -> list[Reply]:
        """Run one TorchServe batch the way the toolkit's ``Transformer.transform`` does (aws-failure-behaviours.md
        §10 [IT-tf][PTI-tf]): the handler functions run once per request, in order; every request is decoded with
        the *first* request's Content-Type and Accept; one exception aborts the whole batch.

        NOTE: the toolkit then answers a one-element list for an N-request batch; how TorchServe maps that onto N
        requests is UNCONFIRMED (§10), so every request of an aborted batch gets the error.
        """
        context = Context(
            self.model_dir, cuda=self._cuda_now(), batch=[h for _, h in requests], batch_size=self.batch_size
        )
        first = requests[0][1]
        # The toolkit passes a missing Content-Type through as None; the handler decides what that means.
        content_type = next((v for k, v in first.items() if CONTENT_TYPE_RX.match(k)), None)
        accept = next((v for k, v in first.items() if k.lower() == "accept"), "")
        if not accept or accept == "*/*":
            accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json")
        results: list[Any] = []
        try:
            for body, _ in requests:
                results.append(self._transform(context, body, content_type, accept))
        except Exception as exc:  # the container boundary: every handler error becomes an HTTP status
            return [self._error(exc)] * len(requests)
        replies = []
        for idx, result in enumerate(results):
            response_type = accept
            if isinstance(result, tuple) and len(result) == 2:
                result, response_type = result
            response_type = context.get_response_content_type(idx) or response_type
            if isinstance(result, str):
                payload = result.encode("utf-8")
            elif isinstance(result, bytes | bytearray):
                payload = bytes(result)
            else:
                payload = json.dumps(result).encode("utf-8")
            status = context.response_status.get(idx, (200, ""))[0]
            replies.append((status, payload, response_type, context.response_headers.get(idx, {})))
        return replies

    def _transform(self, context: Context, body: bytes, content_type: str | None, accept: str) -> Any:
        data: Any = body
        if content_type in TEXT_TYPES:
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                message = f"The request body is not valid UTF-8 for Content-Type {content_type}."
                raise ToolkitError(400, message) from exc
        if self.transform:
            return self._call(self.transform, context, self.model, data, content_type, accept)
        decoded = self._call(self.input_fn, context, data, content_type)
        prediction = self._call(self.predict_fn, context, decoded, self.model)
        return self._call(self.output_fn, context, prediction, accept)

    @staticmethod
    def _error(exc: Exception) -> Reply:
        """A handler error as the caller sees it: the handler's own message for client faults, nothing internal."""
        status = getattr(exc, "status_code", None)
        message = getattr(exc, "message", None)
        LOGGER.error("invocation failed: %s", exc, exc_info=exc)
        if isinstance(status, int) and 400 <= status <= 599 and isinstance(message, str):
            return status, message.encode("utf-8"), "text/plain", {}
        # An exception without the toolkit's status/message is a bug in the handler; its text may carry paths.
        return (
            500,
            b"The model handler failed on this request; see the endpoint's log for the traceback.",
            "text/plain",
            {},
        )
