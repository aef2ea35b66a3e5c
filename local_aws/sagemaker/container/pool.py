"""The model workers of one instance, as TorchServe's frontend runs them: a process per worker, one shared request
queue, each worker taking up to ``batch_size`` requests gathered for at most ``max_batch_delay_ms``, and a worker
that dies (or answers no batch within the response timeout) replaced by a fresh one.

Processes, not threads: a worker per core only adds throughput when the workers do not share one interpreter's GIL
for decoding and preprocessing, and a crashing worker must not take the instance with it. ``multiprocessing``
(stdlib) gives each one a pipe; the ``spawn`` start method loads torch afresh in each, as TorchServe's Python
backend does, instead of forking a process that holds threads.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from local_aws.sagemaker.container.config import ServingConfig
from local_aws.sagemaker.container.handler import Reply
from local_aws.sagemaker.container.worker import serve

LOGGER = logging.getLogger("local_aws.sagemaker.container")
POLL_S = 0.2
# TorchServe logs "Retry worker: <port> in 1 seconds." and backs off further on repeated failures.
RESTART_BACKOFF_S = (1.0, 1.0, 2.0, 3.0, 5.0, 8.0)
DIED: Reply = (500, b"The model worker serving this request died; it is being restarted.", "text/plain", {})
TIMED_OUT: Reply = (500, b"The model worker did not answer within the response timeout.", "text/plain", {})


class ModelLoadError(Exception):
    """A worker could not load the model; the message is the reason."""


@dataclass
class Job:
    body: bytes
    headers: dict[str, str]
    done: threading.Event = field(default_factory=threading.Event)
    reply: Reply | None = None


@dataclass
class Worker:
    index: int
    process: BaseProcess | None = None
    conn: Connection | None = None
    ready: bool = False
    restarts: int = 0
    batches: int = 0


class WorkerPool:
    """Start with :meth:`start`, send requests with :meth:`submit`, stop with :meth:`stop`."""

    def __init__(self, model_dir: str, program: str | None, config: ServingConfig) -> None:
        self.model_dir = model_dir
        self.program = program
        self.config = config
        self.workers = [Worker(i) for i in range(config.workers)]
        self._jobs: queue.Queue[Job] = queue.Queue()
        self._stopping = threading.Event()
        self._mp = multiprocessing.get_context("spawn")

    # --------------------------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start every worker and wait for each to load the model.

        Raises:
            ModelLoadError: a worker could not load it (the first reason).
        """
        for worker in self.workers:
            self._spawn(worker)
        reasons = [reason for worker in self.workers if (reason := self._await_ready(worker))]
        if reasons:
            self.stop()
            raise ModelLoadError(reasons[0])
        for worker in self.workers:
            threading.Thread(target=self._dispatch, args=(worker,), name=f"worker-{worker.index}", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        for worker in self.workers:
            self._retire(worker)

    def healthy(self) -> int:
        """Workers that have loaded the model and are alive."""
        return sum(1 for w in self.workers if w.ready and w.process is not None and w.process.is_alive())

    def submit(self, body: bytes, headers: dict[str, str]) -> Reply:
        """Queue one request for the next free worker; block until it is answered."""
        job = Job(body, headers)
        self._jobs.put(job)
        job.done.wait()
        assert job.reply is not None
        return job.reply

    # --------------------------------------------------------------------------------------------- workers
    def _spawn(self, worker: Worker) -> None:
        parent, child = self._mp.Pipe()
        process = self._mp.Process(
            target=serve,
            args=(child, self.model_dir, self.program, self.config.batch_size, os.getpid()),
            name=f"model-worker-{worker.index}",
            daemon=True,
        )
        process.start()
        child.close()  # only the worker holds its end: its death closes the pipe
        worker.process, worker.conn, worker.ready = process, parent, False

    def _await_ready(self, worker: Worker) -> str | None:
        """None once the worker has loaded the model, else why it did not."""
        assert worker.conn is not None
        try:
            status, reason = worker.conn.recv()
        except (EOFError, OSError):
            code = worker.process.exitcode if worker.process else None
            return f"model worker exited with code {code} while loading the model"
        if status != "ready":
            return str(reason)
        worker.ready = True
        return None

    def _retire(self, worker: Worker) -> None:
        worker.ready = False
        if worker.conn is not None:
            worker.conn.close()
        if worker.process is not None and worker.process.is_alive():
            worker.process.terminate()
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
        if worker.process is not None:
            worker.process.join(timeout=5)
        worker.process, worker.conn = None, None

    def _restart(self, worker: Worker) -> None:
        """Replace a dead worker, backing off between attempts while it keeps failing."""
        self._retire(worker)
        while not self._stopping.is_set():
            delay = RESTART_BACKOFF_S[min(worker.restarts, len(RESTART_BACKOFF_S) - 1)]
            worker.restarts += 1
            LOGGER.warning("model worker %d died; retry worker in %.0f seconds", worker.index, delay)
            if self._stopping.wait(delay):
                return
            self._spawn(worker)
            reason = self._await_ready(worker)
            if reason is None:
                LOGGER.info("model worker %d restarted", worker.index)
                return
            LOGGER.error("model worker %d failed to restart: %s", worker.index, reason)
            self._retire(worker)

    # --------------------------------------------------------------------------------------------- batches
    def _next_batch(self) -> list[Job]:
        """The first queued request, then whatever else arrives within the batch delay, up to the batch size."""
        try:
            batch = [self._jobs.get(timeout=POLL_S)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.config.max_batch_delay_ms / 1000
        while len(batch) < self.config.batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._jobs.get(timeout=remaining) if remaining > 0 else self._jobs.get_nowait())
            except queue.Empty:
                break
        return batch

    def _dispatch(self, worker: Worker) -> None:
        while not self._stopping.is_set():
            if not self.healthy_worker(worker):
                self._restart(worker)
                continue
            batch = self._next_batch()
            if not batch:
                continue
            replies = self._run(worker, [(job.body, job.headers) for job in batch])
            worker.batches += 1
            for job, reply in zip(batch, replies, strict=True):
                job.reply = reply
                job.done.set()

    @staticmethod
    def healthy_worker(worker: Worker) -> bool:
        return worker.ready and worker.process is not None and worker.process.is_alive()

    def _run(self, worker: Worker, requests: list[tuple[bytes, dict[str, str]]]) -> list[Reply]:
        assert worker.conn is not None and worker.process is not None
        deadline = time.monotonic() + self.config.response_timeout_s
        try:
            worker.conn.send(requests)
            while not worker.conn.poll(POLL_S):
                if not worker.process.is_alive():
                    raise EOFError
                if time.monotonic() > deadline:
                    LOGGER.error("model worker %d timed out; killing it", worker.index)
                    worker.process.kill()
                    worker.ready = False
                    return [TIMED_OUT] * len(requests)
            replies: Any = worker.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            worker.ready = False
            return [DIED] * len(requests)
        worker.restarts = 0
        return list(replies)
