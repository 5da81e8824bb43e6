"""Neural style transfer (Gatys): VGG features, style, content and TV losses, and the Adam and L-BFGS
optimizers. Needs nodeflow[nst]."""
