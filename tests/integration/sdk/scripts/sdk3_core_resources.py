"""SDK v3 path: the ``sagemaker.core.resources`` classes against the local runtime.

Run with the ``.venv-sdk3`` interpreter; ``AWS_*`` from ``python -m ops env`` plus

- ``SDK_ENDPOINT_NAME``: an endpoint (``Endpoint.get`` → ``wait_for_status("InService")`` → ``invoke``);
- ``SDK_PAYLOAD``: the JSON body to send (``application/json``);
- ``SDK_TRAINING_JOB_NAME``: optional, a training job to read back with ``TrainingJob.get``.

Prints ``SDK_RESULT {json}`` (endpoint status, response content type and decoded body, the training job's status,
artifact and final metrics) as its last line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from sagemaker.core.resources import Endpoint, TrainingJob


def _read(body: Any) -> str:
    """The response body as text, whether the SDK hands back bytes or a botocore stream."""
    raw = body.read() if hasattr(body, "read") else body
    return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)


def main() -> int:
    """Read, wait for, and invoke the endpoint; read the training job."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    region = os.environ["AWS_DEFAULT_REGION"]
    endpoint = Endpoint.get(os.environ["SDK_ENDPOINT_NAME"], region=region)
    endpoint.wait_for_status("InService", poll=1, timeout=120)
    response = endpoint.invoke(
        body=os.environ["SDK_PAYLOAD"].encode(), content_type="application/json", accept="application/json"
    )
    result: dict[str, Any] = {
        "EndpointStatus": endpoint.endpoint_status,
        "EndpointArn": endpoint.endpoint_arn,
        "ContentType": response.content_type,
        "InvokedProductionVariant": response.invoked_production_variant,
        "Body": json.loads(_read(response.body)),
    }
    job_name = os.environ.get("SDK_TRAINING_JOB_NAME")
    if job_name:
        job = TrainingJob.get(job_name, region=region)
        result["TrainingJob"] = {
            "TrainingJobStatus": job.training_job_status,
            "S3ModelArtifacts": job.model_artifacts.s3_model_artifacts,
            "FinalMetrics": {m.metric_name: m.value for m in job.final_metric_data_list or []},
        }
    print("SDK_RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
