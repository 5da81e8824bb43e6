"""ComfyUI's formats: API prompts and editor workflows both ways, PNG chunks, the node catalogue,
history and event shapes. No web framework is imported here; nodes, the CLI and the server use it."""
