"""SDK v2 path: ``sagemaker.predictor.Predictor(...).predict(...)`` on an endpoint of the local runtime.

Run with the ``.venv-sdk2`` interpreter; ``AWS_*`` from ``python -m ops env`` plus ``SDK_ENDPOINT_NAME`` and
``SDK_PAYLOAD`` (a JSON document, sent with ``JSONSerializer``, the answer read with ``JSONDeserializer``).
Prints ``SDK_RESULT {json}`` (the deserialized prediction) as its last line.
"""

from __future__ import annotations

import json
import logging
import os
import sys

import boto3
from sagemaker.deserializers import JSONDeserializer
from sagemaker.predictor import Predictor
from sagemaker.serializers import JSONSerializer
from sagemaker.session import Session

# NOTE: see sdk2_pytorch_fit.py: no telemetry calls to real AWS.
SDK_DEFAULTS = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def main() -> int:
    """One prediction."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    session = Session(
        boto_session=boto3.Session(region_name=os.environ["AWS_DEFAULT_REGION"]), sagemaker_config=SDK_DEFAULTS
    )
    predictor = Predictor(
        endpoint_name=os.environ["SDK_ENDPOINT_NAME"],
        sagemaker_session=session,
        serializer=JSONSerializer(),
        deserializer=JSONDeserializer(),
    )
    prediction = predictor.predict(json.loads(os.environ["SDK_PAYLOAD"]))
    print("SDK_RESULT " + json.dumps({"Prediction": prediction}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
