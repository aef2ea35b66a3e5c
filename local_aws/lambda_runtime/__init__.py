"""A Lambda runtime without Docker: the function from the template (function) run in-process (runtime)."""
