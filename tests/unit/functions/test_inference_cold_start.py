"""The handler's cold start in a fresh interpreter with Lambda's environment and tracing on (as deployed).

What the first request needs is loaded (Powertools Logger, Metrics, Tracer with botocore patched, the client);
what it does not is left out: X-Ray's patches for libraries the function never calls (requests, httplib, sqlite3) and
Powertools' event_handler package (every resolver and event class it has, for two fixed routes).
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.lambda_init import FUNCTION_ID, function_environment
from local_aws.lambda_runtime.function import function_spec_from_template

PROBE = """
import json, sys
import app
from aws_xray_sdk.core import patcher
print(json.dumps({
    "tracing": not app.tracer.disabled,
    "patched": sorted(patcher._PATCHED_MODULES),
    "loaded": sorted(m for m in ("requests", "sqlite3", "aws_lambda_powertools.event_handler") if m in sys.modules),
    "client": type(app._dependencies.predictor._client).__name__ if app._dependencies else None,
}))
"""


def test_cold_start_traces_botocore_only_and_builds_the_client() -> None:
    spec = function_spec_from_template(FUNCTION_ID)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=spec.code_dir,
        env=function_environment(spec),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"tracing": True, "patched": ["botocore"], "loaded": [], "client": "SageMakerRuntime"}
