"""Arbitrary style transfer (Magenta): offline ONNX, or TF Hub. Needs nodeflow[hub] (nodeflow[tfhub] for TF Hub)."""

# The pip extra this family needs (HubStylize model_source=tfhub needs nodeflow[tfhub]).
EXTRA: str | None = "hub"
