"""Image nodes: load, save, edge and high-pass views, labelled grids, loss plots. numpy and Pillow only."""
