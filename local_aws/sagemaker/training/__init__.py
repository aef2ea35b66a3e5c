"""Training jobs: the records and status machine (jobs), one job's run (runner), the toolkit contract."""
