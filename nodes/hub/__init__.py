"""Arbitrary style transfer (Magenta): offline ONNX, or TF Hub. Needs nodeflow[hub] (nodeflow[tfhub] for TF Hub)."""
