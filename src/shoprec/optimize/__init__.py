"""Encoder transformations, offline only: int8/fp16 quantisation, the static-embedding student,
measurements. Imports models and core only; ``shoprec optimize`` itself (the steps, the quality
gate) is :mod:`shoprec.pipeline.optimize`."""
