"""The operator CLI: one set of commands for the stack on AWS and on the local runtime (``python -m ops``)."""
