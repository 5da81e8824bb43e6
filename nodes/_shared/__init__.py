"""Helpers that several node families use: image conversions, downloads, the torch
device probe, and port types that cross families."""
