"""CloudWatch Logs for the local runtime: streams on disk (store) and the Logs API over them (api)."""
