"""Graph layout (left-to-right columns) and pictures of graphs (SVG, PNG, text)."""
