"""Sweeps: a graph run over a grid of input values, and the contact sheets that show the results."""
