"""EventBridge delivery of the events AWS services emit (see delivery.py)."""
