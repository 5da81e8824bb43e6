"""Image nodes: load, save, edge and high-pass views, colour matching, labelled grids, loss plots.
numpy and Pillow only."""
