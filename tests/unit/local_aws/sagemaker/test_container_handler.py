"""local_aws.sagemaker.container.handler: the inference toolkit's handler contract, and error bodies that leak nothing.

Each test writes ``<model_dir>/code/inference.py`` to ``tmp_path``; the Handler imports it by name and puts ``code/``
on ``sys.path`` as the toolkit does in its own process, so both are restored after every test (the stand-in must not
shadow ``training/inference.py`` for later tests).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from local_aws.sagemaker.container.handler import (
    Context,
    Handler,
    ToolkitError,
    default_input_fn,
    default_output_fn,
)

LEAKS = ("Traceback", 'File "', "/tmp", "/work", "/opt/ml", "KeyError", "ZeroDivisionError", "division by zero")


@pytest.fixture(autouse=True)
def _isolated_user_modules() -> Iterator[None]:
    path, before = list(sys.path), dict(sys.modules)
    yield
    sys.path[:] = path
    for name in [n for n in sys.modules if n not in before or sys.modules[n] is not before[n]]:
        del sys.modules[name]
    sys.modules.update(before)


def _model(root: Path, source: str, program: str = "inference.py") -> str:
    (root / "code").mkdir(parents=True, exist_ok=True)
    (root / "code" / program).write_text(source)
    return str(root)


def _assert_no_leak(body: bytes) -> None:
    text = body.decode("utf-8", "replace")
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} leaked into the error body {text!r}"


HANDLERS = """
class E(Exception):
    status_code = 415
    message = "nope"
def model_fn(model_dir, context):
    return {"dir": context.system_properties["model_dir"]}
def input_fn(data, content_type):
    if content_type != "application/json":
        raise E()
    return data
def predict_fn(data, model):
    if data == "boom":
        raise KeyError("/opt/ml/model/code/secret.py")
    if data == "zero":
        return 1 / 0
    return {"echo": data, "dir": model["dir"]}
"""


def test_handler_arity_context_and_status_codes(tmp_path: Path) -> None:
    """A trailing context is passed where declared; ``status_code``/``message`` errors keep their status."""
    handler = Handler(_model(tmp_path / "m1", HANDLERS))
    status, body, ctype, _ = handler.invoke(b"hi", {"Content-Type": "application/json", "Accept": "*/*"})
    assert (status, ctype) == (200, "application/json")  # */* → SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT default
    assert json.loads(body) == {"echo": "hi", "dir": str(tmp_path / "m1")}
    status, body, ctype, _ = handler.invoke(b"x", {"Content-Type": "image/png"})
    assert (status, body, ctype) == (415, b"nope", "text/plain")


@pytest.mark.parametrize("payload", [b"boom", b"zero"])
def test_handler_bug_is_a_500_without_traceback_path_or_exception_name(tmp_path: Path, payload: bytes) -> None:
    """An exception without the toolkit's status is a generic 500: no traceback, path or class name in the body."""
    handler = Handler(_model(tmp_path / "m", HANDLERS))
    status, body, ctype, headers = handler.invoke(payload, {"Content-Type": "application/json"})
    assert (status, ctype, headers) == (500, "text/plain", {})
    assert b"see the endpoint's log" in body
    _assert_no_leak(body)


def test_missing_content_type_with_non_utf8_bytes_is_handled(tmp_path: Path) -> None:
    """No Content-Type and bytes that are not UTF-8: the defaults answer 415, a decoding handler a clean 500."""
    default = Handler(_model(tmp_path / "d", "def model_fn(model_dir):\n    return object()\n"))
    status, body, _, _ = default.invoke(b"\xff\xfe\x00garbage", {})
    assert 400 <= status < 500
    _assert_no_leak(body)

    decoding = Handler(
        _model(
            tmp_path / "u",
            "def model_fn(d):\n    return 1\n"
            "def input_fn(data, content_type):\n    return data.decode('utf-8')\n"
            "def predict_fn(d, m):\n    return d\n",
        )
    )
    status, body, _, _ = decoding.invoke(b"\xff\xfe", {})
    assert status == 500
    _assert_no_leak(body)
    assert b"UnicodeDecodeError" not in body


def test_text_content_type_with_non_utf8_bytes_is_400(tmp_path: Path) -> None:
    """application/json or text/csv bytes that are not UTF-8 are the client's fault (400), with a plain message."""
    handler = Handler(_model(tmp_path / "m", HANDLERS))
    for content_type in ("application/json", "text/csv"):
        status, body, _, _ = handler.invoke(b"\xff\xfe", {"content-type": content_type})
        assert status == 400
        assert body == f"The request body is not valid UTF-8 for Content-Type {content_type}.".encode()


def test_handler_rejects_bad_arity_and_transform_with_input_fn(tmp_path: Path) -> None:
    """The toolkit's load-time rules: arity N or N+1 (context), and transform_fn never with input/predict/output_fn."""
    with pytest.raises(TypeError, match="predict_fn must take 2 arguments"):
        Handler(_model(tmp_path / "a", "def model_fn(d): return 1\ndef predict_fn(a, b, c, d): return 1\n"))
    with pytest.raises(ValueError, match="transform_fn"):
        Handler(
            _model(
                tmp_path / "b",
                "def model_fn(d): return 1\ndef transform_fn(m, d, c, a): return 1\ndef input_fn(d, c): return d\n",
            )
        )


def test_transform_fn_gets_model_data_content_type_and_accept(tmp_path: Path) -> None:
    """transform_fn replaces the three steps; a (body, content type) tuple sets the response type."""
    source = (
        "def model_fn(d):\n    return 'M'\n"
        "def transform_fn(model, data, content_type, accept):\n"
        "    return f'{model}|{data}|{content_type}|{accept}', 'text/csv'\n"
    )
    handler = Handler(_model(tmp_path / "t", source))
    assert handler.invoke(b"1,2", {"Content-Type": "text/csv", "Accept": "text/csv"})[:3] == (
        200,
        b"M|1,2|text/csv|text/csv",
        "text/csv",
    )


def test_context_sets_status_content_type_and_headers(tmp_path: Path) -> None:
    """A handler may set the response status, content type and headers through the context."""
    source = (
        "def model_fn(d):\n    return 1\n"
        "def input_fn(data, ct, context):\n    context.set_response_status(202)\n    return data\n"
        "def predict_fn(d, m):\n    return {'ok': True}\n"
        "def output_fn(p, accept, context):\n"
        "    context.set_response_content_type(0, 'application/vnd.x')\n"
        "    context.set_response_header(0, 'X-Model', 'v1')\n    return p\n"
    )
    status, body, ctype, headers = Handler(_model(tmp_path / "c", source)).invoke(b"{}", {"Content-Type": "x/y"})
    assert (status, json.loads(body), ctype, headers) == (202, {"ok": True}, "application/vnd.x", {"X-Model": "v1"})


def test_default_accept_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Accept (or */*): SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT decides, as in the toolkit."""
    monkeypatch.setenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/csv")
    source = (
        "def model_fn(d):\n    return 1\ndef input_fn(d, c):\n    return d\n"
        "def predict_fn(d, m):\n    return d\ndef output_fn(p, accept):\n    return accept\n"
    )
    status, body, ctype, _ = Handler(_model(tmp_path / "e", source)).invoke(b"", {})
    assert (status, body, ctype) == (200, b"text/csv", "text/csv")


def test_sagemaker_program_names_the_module(tmp_path: Path) -> None:
    """SAGEMAKER_PROGRAM picks another module in code/; a program that is not there is an ImportError."""
    model_dir = _model(tmp_path / "p", "def model_fn(d):\n    return 'serve'\n", program="serve.py")
    assert Handler(model_dir, "serve.py").model == "serve"
    with pytest.raises(ImportError, match=r"SAGEMAKER_PROGRAM 'missing\.py' not found"):
        Handler(model_dir, "missing.py")


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_pytorch_defaults_serve_a_torchscript_model_end_to_end(tmp_path: Path) -> None:
    """Without user handlers: model.pt as TorchScript, JSON in, JSON out; an unsupported Accept is a handled 406."""
    model_dir = tmp_path / "ts"
    model_dir.mkdir()
    torch.jit.script(torch.nn.Identity()).save(str(model_dir / "model.pt"))
    handler = Handler(str(model_dir))
    status, body, ctype, _ = handler.invoke(b"[[1.0, 2.0]]", {"Content-Type": "application/json"})
    assert (status, json.loads(body), ctype) == (200, [[1.0, 2.0]], "application/json")
    status, body, _, _ = handler.invoke(b"[1]", {"Content-Type": "application/json", "Accept": "image/png"})
    assert status == 406 and body == b"Accept type image/png is not supported by this framework."


def test_default_model_fn_needs_exactly_one_model_file(tmp_path: Path) -> None:
    """No model.pt and no single *.pt/*.pth: the load fails with a message naming what was found."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="found 0"):
        Handler(str(tmp_path / "empty"))


def test_default_input_and_output_fns() -> None:
    """JSON/CSV decode to tensors; output encodes JSON or CSV by Accept; unknown types are 415/406 ToolkitErrors."""
    assert default_input_fn("[1, 2]", "application/json").tolist() == [1, 2]
    assert default_input_fn("1,2\n3,4\n", "text/csv").tolist() == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(ToolkitError) as unsupported:
        default_input_fn(b"x", "image/png")
    assert unsupported.value.status_code == 415
    assert default_output_fn(torch.tensor([1.5]), "application/json") == "[1.5]"
    assert default_output_fn(torch.tensor([[1, 2]]), "text/plain, text/csv").strip() == "1,2"
    with pytest.raises(ToolkitError) as not_acceptable:
        default_output_fn(torch.tensor([1]), "image/png")
    assert not_acceptable.value.status_code == 406


def test_context_exposes_request_headers() -> None:
    """The TorchServe-style context answers header lookups for request 0."""
    context = Context("/opt/ml/model", {"X-Amzn-SageMaker-Custom-Attributes": "a=1"})
    assert context.get_request_header(0, "X-Amzn-SageMaker-Custom-Attributes") == "a=1"
    assert context.get_all_request_header(0) == {"X-Amzn-SageMaker-Custom-Attributes": "a=1"}
    assert context.system_properties["model_dir"] == "/opt/ml/model"


GPU_ID = """
import json
def model_fn(model_dir):
    return None
def transform_fn(model, data, content_type, accept, context):
    return json.dumps(context.system_properties["gpu_id"])
"""


def test_gpu_id_is_asked_of_torch_once_and_only_once_torch_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every request's context has gpu_id 0 on a GPU; torch.cuda.is_available() is not asked per request."""
    calls: list[int] = []

    def available() -> bool:
        calls.append(1)
        return True

    monkeypatch.setattr(torch.cuda, "is_available", available)
    monkeypatch.delitem(sys.modules, "torch")  # a model whose code has not loaded torch yet
    handler = Handler(_model(tmp_path / "gpu", GPU_ID))
    assert handler.invoke(b"x", {"Content-Type": "text/plain"})[1] == b"null"  # no torch: no GPU, as before
    assert calls == []
    monkeypatch.setitem(sys.modules, "torch", torch)  # the handler loads torch at its first request
    for _ in range(3):
        assert handler.invoke(b"x", {"Content-Type": "text/plain"})[1] == b"0"
    assert len(calls) == 1
