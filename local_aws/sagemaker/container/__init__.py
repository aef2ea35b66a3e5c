"""The model container of an endpoint instance: the inference toolkit contract and its HTTP server."""

# Printed on stderr when the model cannot load; the launcher puts what follows it into the endpoint's FailureReason.
# NOTE: here rather than in server.py, so the launcher can read it without importing the server (and werkzeug).
LOAD_FAILED_MARKER = "MODEL_LOAD_FAILED "
