"""The model container of one endpoint instance over real HTTP: model workers, TorchServe batching, and a worker
that dies being replaced, as the SageMaker PyTorch container (TorchServe + the inference toolkit) does.

A probe handler (``code/inference.py`` answering its worker's pid and the batch it was served in) shows which worker
served what; the real ``training/inference.py`` on ``untrained_artifact()`` shows a batch with a bad image in it.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from local_aws.constants import REPO_ROOT
from local_aws.sagemaker.container import LOAD_FAILED_MARKER
from local_aws.sagemaker.training.runner import free_port
from tests.integration.local_aws_fixtures import untrained_artifact

PROBE = """
import json, os, time

def model_fn(model_dir):
    return os.getpid()

def input_fn(data, content_type, context):
    if data == b"die":
        os._exit(3)
    if data.startswith(b"sleep"):
        time.sleep(float(data[5:]))
    return data

def predict_fn(data, model):
    return model

def output_fn(pid, accept, context):
    return json.dumps({"pid": pid, "batch": len(context.request_processor),
                       "batch_size": context.system_properties["batch_size"]})
"""


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("probe-model")
    (root / "code").mkdir()
    (root / "code" / "inference.py").write_text(PROBE)
    return root


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real-model")
    with tarfile.open(fileobj=io.BytesIO(untrained_artifact()), mode="r:gz") as tar:
        tar.extractall(root, filter="data")
    return root


class Container:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read(), response.getheader("Content-Type")
        finally:
            conn.close()

    def ping(self) -> tuple[int, str]:
        try:
            status, body, _ = self.request("GET", "/ping")
        except OSError:
            return 0, ""
        return status, json.loads(body)["status"]

    def invoke(self, body: bytes, content_type: str = "application/octet-stream") -> tuple[int, Any]:
        status, payload, ctype = self.request("POST", "/invocations", body, {"Content-Type": content_type})
        return status, json.loads(payload) if ctype == "application/json" else payload.decode()

    def children(self) -> set[int]:
        """The model workers among the instance's child processes (not multiprocessing's resource tracker)."""
        tasks = Path(f"/proc/{self.proc.pid}/task")
        pids = {int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()}
        return {pid for pid in pids if b"spawn_main" in _cmdline(pid)}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # exited meanwhile
        return b""


@contextlib.contextmanager
def container(model_dir: Path, tmp_path: Path, **env: str) -> Iterator[Container]:
    port = free_port()
    log = tmp_path / f"container-{port}.log"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    environ.update(env, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "local_aws.sagemaker.container", "--model-dir", str(model_dir), "--port", str(port)],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    box = Container(proc, port, log)
    try:
        deadline = time.monotonic() + 180
        while box.ping()[0] != 200:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield box
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def concurrently(box: Container, bodies: list[bytes], content_type: str = "application/octet-stream") -> list[Any]:
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda body: box.invoke(body, content_type), bodies))


def test_workers_default_to_the_logical_cpus_and_share_the_requests(probe_dir: Path, tmp_path: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    with container(probe_dir, tmp_path) as box:
        assert box.ping() == (200, "Healthy")
        replies = concurrently(box, [b"sleep0.5"] * (2 * cpus))
        assert {status for status, _ in replies} == {200}
        pids = {answer["pid"] for _, answer in replies}
        assert len(pids) == cpus, replies  # every worker served; at 0.5 s each none stayed idle
        assert pids <= box.children()  # processes of the instance's own tree, not the frontend
        assert {answer["batch"] for _, answer in replies} == {1}


def test_model_server_workers_sets_the_worker_count(probe_dir: Path, tmp_path: Path) -> None:
    with container(probe_dir, tmp_path, SAGEMAKER_MODEL_SERVER_WORKERS="3") as box:
        replies = concurrently(box, [b"sleep0.5"] * 6)
        assert len({answer["pid"] for _, answer in replies}) == 3
        assert len(box.children()) == 3


def test_batch_settings_batch_requests_on_one_worker_as_the_toolkit_renders_them(
    probe_dir: Path, tmp_path: Path
) -> None:
    """Only a batch size is set: the toolkit's models= entry then starts minWorkers (default 1) worker."""
    env = {"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SAGEMAKER_TS_BATCH_SIZE": "4"}
    env["SAGEMAKER_TS_MAX_BATCH_DELAY"] = "1500"
    with container(probe_dir, tmp_path, **env) as box:
        assert len(box.children()) == 1
        replies = concurrently(box, [b"x"] * 4)
        assert [a["batch"] for _, a in replies] == [4] * 4, replies
        assert {a["batch_size"] for _, a in replies} == {4}
        start = time.monotonic()
        status, alone = box.invoke(b"x")
        assert (status, alone["batch"]) == (200, 1)
        assert time.monotonic() - start >= 1.4  # a lone request waits out the batch delay


def test_a_worker_that_dies_fails_its_request_and_is_replaced(probe_dir: Path, tmp_path: Path) -> None:
    with container(probe_dir, tmp_path, SAGEMAKER_MODEL_SERVER_WORKERS="2") as box:
        before = box.children()
        status, body = box.invoke(b"die")
        assert status == 500 and "died" in body
        states = set()
        deadline = time.monotonic() + 120
        while True:  # the instance keeps serving on the other worker meanwhile
            assert box.invoke(b"x")[0] == 200
            states.add(box.ping())
            if len(box.children()) == 2 and box.ping() == (200, "Healthy") and box.children() != before:
                break
            assert time.monotonic() < deadline, box.log.read_text()
            time.sleep(0.1)
        assert len(box.children() & before) == 1  # one replaced, the other untouched
        assert "retry worker" in box.log.read_text()
        assert states <= {(200, "Healthy"), (200, "Partial Healthy")}


def test_a_bad_worker_setting_fails_the_start_with_its_name(probe_dir: Path, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), SAGEMAKER_MODEL_SERVER_WORKERS="zero")
    done = subprocess.run(
        [sys.executable, "-m", "local_aws.sagemaker.container", "--model-dir", str(probe_dir), "--port", "0"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert f"{LOAD_FAILED_MARKER}SAGEMAKER_MODEL_SERVER_WORKERS must be an integer >= 1, got 'zero'" in (
        done.stderr.decode()
    )


def test_real_handler_in_a_batch_fails_only_the_bad_image(real_dir: Path, tmp_path: Path) -> None:
    def image(fmt: str) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (40, 40), (120, 60, 200)).save(buf, format=fmt)
        return buf.getvalue()

    env = {"SAGEMAKER_TS_BATCH_SIZE": "3", "SAGEMAKER_TS_MAX_BATCH_DELAY": "3000"}
    with container(real_dir, tmp_path, **env) as box:
        replies = concurrently(box, [image("JPEG"), image("GIF"), image("PNG")], "image/jpeg")
    statuses = sorted(status for status, _ in replies)
    assert statuses == [200, 200, 415], replies
    bad = next(answer for status, answer in replies if status == 415)
    assert "unsupported image format GIF" in bad["message"]
    assert all(answer["model_version"] == "probe-v1" for status, answer in replies if status == 200)


def test_a_worker_past_the_response_timeout_is_killed_and_replaced(probe_dir: Path, tmp_path: Path) -> None:
    env = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", "SAGEMAKER_MODEL_SERVER_TIMEOUT": "2"}
    with container(probe_dir, tmp_path, **env) as box:
        (hung,) = box.children()
        start = time.monotonic()
        status, body = box.invoke(b"sleep60")
        assert status == 500 and "response timeout" in body
        assert time.monotonic() - start < 20
        deadline = time.monotonic() + 120
        while not (box.ping() == (200, "Healthy") and box.children() and box.children() != {hung}):
            assert time.monotonic() < deadline, box.log.read_text()
            time.sleep(0.2)
        assert box.invoke(b"x")[0] == 200


def test_ping_is_unhealthy_while_the_only_worker_restarts(probe_dir: Path, tmp_path: Path) -> None:
    with container(probe_dir, tmp_path, SAGEMAKER_MODEL_SERVER_WORKERS="1") as box:
        assert box.invoke(b"die")[0] == 500
        assert box.ping() == (500, "Unhealthy")  # the restart waits out its back-off first (1 s)
        deadline = time.monotonic() + 120
        while box.ping() != (200, "Healthy"):
            assert time.monotonic() < deadline, box.log.read_text()
            time.sleep(0.2)
        assert box.invoke(b"x")[0] == 200
