"""Neural style transfer (Gatys): VGG features, style, content and TV losses, and the Adam and L-BFGS
optimizers. Needs nodeflow[nst]."""

# The pip extra this family needs (VGGFeatures framework=tensorflow needs nodeflow[nst-tf]).
EXTRA: str | None = "nst"
