"""Offline pipelines: building artifacts, training the ranker, evaluating quality."""
