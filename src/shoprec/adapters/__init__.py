"""Implementations of the Protocols in :mod:`shoprec.types` that talk to the outside."""
