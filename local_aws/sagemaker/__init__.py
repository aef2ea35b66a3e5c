"""A local SageMaker: control plane (JSON 1.1), runtime (invocations), training hosts and endpoint workers."""
