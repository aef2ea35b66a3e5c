"""Step Functions: moto's interpreter with fixes (interpreter), execution records (executions), the API overlay (api)."""
