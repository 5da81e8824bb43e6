"""nodeflow: a node-graph engine for image workflows.

Kept import-light on purpose: `nodeflow --help` must not pay for pydantic,
numpy or any framework. Public names load on first use.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "Node": "node",
    "NodeInputs": "node",
    "NodeOutputs": "node",
    "Input": "node",
    "Output": "node",
    "InputError": "node",
    "port_type": "types",
    "IMAGE": "types",
    "INT": "types",
    "FLOAT": "types",
    "STRING": "types",
    "BOOLEAN": "types",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(name)
