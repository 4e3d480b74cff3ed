"""The model registry: immutable versions, a current pointer, promotion gates and rollback."""
