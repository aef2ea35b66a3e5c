"""Benchmarks (``make bench``): above everything they measure; one ``name=value`` line per figure."""
