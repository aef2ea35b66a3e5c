"""A Lambda runtime without Docker: the function as the template declares it (function), invoked in-process (runtime)."""
