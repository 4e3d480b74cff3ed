"""Offline pipelines: building artifacts, training the ranker, evaluating quality, the
``shoprec optimize`` chain and ``shoprec bench encoder``."""
