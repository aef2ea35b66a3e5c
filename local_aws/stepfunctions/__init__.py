"""Step Functions: moto's interpreter with fixes (interpreter), execution records (executions), API overlay (api)."""
