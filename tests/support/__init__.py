"""Helpers shared by the tests, importable as ``support.*`` (``pythonpath = ["tests"]`` in
pyproject.toml): the tiny shop, tiny models built in code, real servers on loopback ports."""
