"""Image nodes: load, save, edge and high-pass views, colour matching, labelled grids, loss plots.
numpy and Pillow only."""

# The pip extra this family needs: None, the base install (numpy and Pillow) is enough.
EXTRA: str | None = None
