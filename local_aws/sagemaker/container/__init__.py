"""The model container of an endpoint instance: the inference toolkit contract and its HTTP server."""
