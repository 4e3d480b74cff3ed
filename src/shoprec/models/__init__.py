"""Inference-side models: artifacts, the ONNX encoder, the ranker. Never imports torch."""
