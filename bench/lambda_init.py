"""``lambda_init_ratio`` for ``make bench`` (issue 10 §1): the inference function's cold-start import over a bare
boto3 sagemaker-runtime client.

Each sample is a fresh interpreter, so nothing is imported yet, timing one statement:

- handler: ``import app`` in functions/inference (Powertools Logger, Metrics, Tracer and the REST resolver, and the
  sagemaker-runtime client it builds during init);
- bare: ``import boto3; boto3.client("sagemaker-runtime")``.

Both run in the environment Lambda gives the function: the template's Environment, the variables the Lambda runtime
sets (``LAMBDA_TASK_ROOT``, ``AWS_LAMBDA_FUNCTION_NAME``, regions) and tracing on (``Tracing: Active``; the local
runtime's ``POWERTOOLS_TRACE_DISABLED`` is dropped). Outside that environment (no ``LAMBDA_TASK_ROOT``) X-Ray's
recorder builds botocore clients for centralized sampling at import, which it never does in Lambda: the handler as it
was measured 452 ms CPU there against 346 ms in Lambda's environment (2.08x and 1.60x a bare client, one interleaved
run), so the 1.94x reported before was mostly an artefact of where it ran.
The two alternate, after one discarded warm-up of each (it writes the bytecode caches), and the figure is the ratio
of the medians of CPU time (``time.process_time``): an import is CPU-bound work (Lambda at 512 MB has a fraction of
a vCPU), and on a shared host CPU time does not count the time spent waiting for a core. The wall-clock medians
(``time.perf_counter``) are on the ``#`` line beside it.

``python -m bench.lambda_init`` prints this figure alone.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from collections.abc import Sequence

from local_aws.lambda_runtime.function import FunctionSpec, function_spec_from_template
from local_aws.lambda_runtime.runtime import lambda_environment

FUNCTION_ID = "InferenceFunction"
SAMPLES = int(os.environ.get("LOCAL_BENCH_LAMBDA_INIT_SAMPLES", "11"))
HANDLER = "import app"
BARE = 'import boto3; boto3.client("sagemaker-runtime")'
_TIMED = (
    "import time; w, c = time.perf_counter(), time.process_time(); {statement}; "
    "print(time.process_time() - c, time.perf_counter() - w)"
)


def function_environment(spec: FunctionSpec) -> dict[str, str]:
    """The process environment of the function's sandbox, tracing on, and nothing of the caller's AWS settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "LAMBDA_", "_X_AMZN"))}
    env.update(lambda_environment(spec, {}))
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the warm-up writes the bytecode caches both sides then use
    return env


def time_statement(statement: str, spec: FunctionSpec, env: dict[str, str]) -> tuple[float, float]:
    """CPU and wall seconds one fresh interpreter (in the function's code directory) takes to run ``statement``."""
    proc = subprocess.run(
        [sys.executable, "-c", _TIMED.format(statement=statement)],
        cwd=spec.code_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{statement!r} failed in a fresh interpreter:\n{proc.stderr[-2000:]}")
    cpu, wall = proc.stdout.strip().splitlines()[-1].split()
    return float(cpu), float(wall)


def lambda_init_figures(samples: int = SAMPLES) -> list[tuple[str, str]]:
    """``lambda_init_ratio``: median handler import over median bare client, ``samples`` alternating pairs."""
    spec = function_spec_from_template(FUNCTION_ID)
    env = function_environment(spec)
    time_statement(HANDLER, spec, env)
    time_statement(BARE, spec, env)
    handler: list[tuple[float, float]] = []
    bare: list[tuple[float, float]] = []
    for _ in range(samples):
        handler.append(time_statement(HANDLER, spec, env))
        bare.append(time_statement(BARE, spec, env))
    (handler_cpu, handler_wall), (bare_cpu, bare_wall) = (
        tuple(statistics.median(column) for column in zip(*runs, strict=True)) for runs in (handler, bare)
    )
    print(
        f"# lambda init ({samples} alternating fresh interpreters each, Lambda's environment, tracing on): "
        f"`{HANDLER}` median {handler_cpu * 1e3:.0f} ms CPU / {handler_wall * 1e3:.0f} ms wall, "
        f"`{BARE}` median {bare_cpu * 1e3:.0f} ms CPU / {bare_wall * 1e3:.0f} ms wall "
        f"(wall ratio {handler_wall / bare_wall:.2f})",
        flush=True,
    )
    return [("lambda_init_ratio", f"{handler_cpu / bare_cpu:.2f}")]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the ``lambda_init_ratio`` line alone."""
    del argv
    for name, value in lambda_init_figures():
        print(f"{name}={value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
