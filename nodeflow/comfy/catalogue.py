"""object_info: each node's declared schema as the ComfyUI frontend reads it.

Widgets round and clamp what users type, so each number's options are chosen from its real
bounds and from the values the bundled graphs use: nothing is capped below its maximum, and
no bundled value (lr 0.02, content weight 1e4, ...) is rounded.
"""

from __future__ import annotations

import inspect
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from nodeflow.bundled import bundled_graphs
from nodeflow.node import InputSpec, Node
from nodeflow.registry import load_nodes

# Inputs that name an image in the input folder: a list of its files and an upload button.
IMAGE_UPLOAD_INPUTS = {("LoadImage", "path"), ("ComfyLoadImage", "image")}
# ComfyUI's LoadImage (input `image`, outputs IMAGE then MASK) and nodeflow's (input `path`,
# output `image`) meet under one name: the catalogue offers ONE LoadImage, ComfyUI's, with
# nodeflow's optional inputs after it, and a prompt's LoadImage runs the one it was written for
# (see load_image_type).
LOAD_IMAGE, COMFY_LOAD_IMAGE = "LoadImage", "ComfyLoadImage"
NODEFLOW_LOAD_IMAGE_EXTRAS = ("max_size", "url", "sha256")
HIDDEN_TYPES = {COMFY_LOAD_IMAGE}  # shown under another name
COMFY_CORE_FAMILY = "comfy_core"  # nodes/comfy_core: ComfyUI's own nodes, with ComfyUI's contracts
EDITOR_ONLY_INPUTS = {"upload"}  # the upload button's value, which some editors send
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}
# Unbounded numbers: ComfyUI's own largest widget bounds.
INT_LIMIT = 0xFFFFFFFFFFFFFFFF
FLOAT_LIMIT = 1.0e300
MIN_DECIMALS, MAX_DECIMALS = 3, 10
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


def output_names(cls: type[Node]) -> list[str]:
    """An output's ComfyUI index is its declaration order."""
    return list(cls.output_specs)


def shown_required(cls: type[Node], name: str) -> bool:
    """Is the input listed under object_info's "required"? nodeflow's inputs with a default are
    optional; ComfyUI's own nodes (the comfy_core family) list every input with a widget default
    as required, in ComfyUI's order, which clients such as ComfyScript use for positional
    arguments."""
    spec = cls.input_specs[name]
    return spec.required or (spec.default is not None and cls.family()[0] == COMFY_CORE_FAMILY)


def ordered_inputs(cls: type[Node]) -> list[str]:
    """Inputs in object_info's order: required ones, then optional."""
    specs = cls.input_specs
    return [n for n in specs if shown_required(cls, n)] + [n for n in specs if not shown_required(cls, n)]


def slot_order(cls: type[Node]) -> list[str]:
    """A node's input slots as the editor creates them: link-only inputs first, then the
    inputs that have a widget."""
    names = ordered_inputs(cls)
    return [n for n in names if not is_widget(cls.input_specs[n])] + [n for n in names if is_widget(cls.input_specs[n])]


def control_values(cls: type[Node], name: str) -> list[Any]:
    """Values the editor stores right after a widget's own: a seed's control mode."""
    spec = cls.input_specs[name]
    return ["fixed"] if spec.port.name == "INT" and is_seed(cls, name) else []


def trailing_values(cls: type[Node]) -> list[Any]:
    """Values of widgets the editor adds after all others: an upload button."""
    return ["image" for n in cls.input_specs if (cls.type, n) in IMAGE_UPLOAD_INPUTS]


def placeholder(spec: InputSpec) -> Any:
    """What the editor shows (and sends) for an optional input whose default is None."""
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(spec.port.name)


def is_widget(spec: InputSpec) -> bool:
    return bool(spec.choices) or spec.port.name in WIDGET_TYPES


def is_seed(cls: type[Node], name: str) -> bool:
    return name == cls.seed_input or name in ("seed", "noise_seed")


@lru_cache(maxsize=1)
def bundled_values() -> dict[tuple[str, str], list[Any]]:
    """{(node type, input): literal values the bundled graphs give it}."""
    seen: dict[tuple[str, str], list[Any]] = {}
    for graph in bundled_graphs().values():
        for spec in graph["nodes"].values():
            for name, value in (spec.get("inputs") or {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    seen.setdefault((spec.get("type"), name), []).append(value)
    return seen


def _decimals(value: float) -> int:
    exponent = Decimal(repr(float(value))).normalize().as_tuple().exponent
    return max(0, -int(exponent))


def float_step(values: list[float]) -> float:
    """One decimal finer than the finest value given (at least 0.001), so typed values of
    that precision survive the widget's rounding."""
    decimals = max([_decimals(v) for v in values] or [0]) + 1
    return 10.0 ** -min(MAX_DECIMALS, max(MIN_DECIMALS, decimals))


def _bounds(info: dict, step: float | int) -> tuple[Any, Any]:
    """The smallest and largest values the server accepts, as a widget of this step shows
    them: an exclusive bound (pydantic gt/lt) becomes the first step inside it."""
    low, high = info.get("minimum"), info.get("maximum")
    if low is None and info.get("exclusiveMinimum") is not None:
        low = _inside(info["exclusiveMinimum"], step)
    if high is None and info.get("exclusiveMaximum") is not None:
        high = _inside(info["exclusiveMaximum"], -step)
    return low, high


def _inside(bound: float | int, step: float | int) -> float | int:
    """bound + step, rounded to the step's decimals (0 + 0.001 is 0.001, not 0.0010000000000000002)."""
    if isinstance(step, int):
        return int(bound) + step
    return round(bound + step, _decimals(abs(step)))


def load_image_type(inputs: dict[str, Any], kept_type: Any = None) -> str:
    """Which node a ComfyUI LoadImage with these inputs is: the type a prompt written by nodeflow
    recorded, else nodeflow's when it names `path` or sets one of nodeflow's extras, else ComfyUI's."""
    if kept_type in (LOAD_IMAGE, COMFY_LOAD_IMAGE):
        return str(kept_type)
    if "path" in inputs:
        return LOAD_IMAGE
    registry = load_nodes()
    specs = registry[LOAD_IMAGE].input_specs if LOAD_IMAGE in registry else {}
    for name in NODEFLOW_LOAD_IMAGE_EXTRAS:
        value = inputs.get(name)
        if name in specs and value is not None and value != placeholder(specs[name]):
            return LOAD_IMAGE
    return COMFY_LOAD_IMAGE


def comfy_class_type(node_type: str) -> str:
    """The class_type a ComfyUI client sees for a nodeflow node type."""
    return LOAD_IMAGE if node_type == COMFY_LOAD_IMAGE else node_type


def input_files(input_dir: Path) -> list[str]:
    if not input_dir.is_dir():
        return []
    return sorted(
        p.relative_to(input_dir).as_posix()
        for p in input_dir.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def input_spec(cls: type[Node], name: str, spec: InputSpec, info: dict, input_dir: Path) -> list:
    opts: dict[str, Any] = {}
    if spec.description:
        opts["tooltip"] = spec.description
    default = spec.default if spec.default is not None else placeholder(spec)
    if (cls.type, name) in IMAGE_UPLOAD_INPUTS:
        files = input_files(input_dir)
        return ["COMBO", {"options": files, "image_upload": True, **({"default": files[0]} if files else {}), **opts}]
    if spec.choices:
        return [
            "COMBO",
            {"options": list(spec.choices), "default": default if not spec.required else spec.choices[0], **opts},
        ]
    port = spec.port.name
    if port not in WIDGET_TYPES:
        return [port, opts] if opts else [port]
    if port == "INT":
        low, high = _bounds(info, 1)
        low = -INT_LIMIT if low is None else int(low)
        if spec.default is None and not spec.required:
            low = min(low, 0)  # room for the "unset" placeholder
        opts.update(min=low, max=INT_LIMIT if high is None else int(high), step=1)
        if is_seed(cls, name):
            opts["control_after_generate"] = "fixed"
        return ["INT", {"default": default if default is not None else max(low, 0), **opts}]
    if port == "FLOAT":
        step = float_step(
            [v for v in [spec.default, *bundled_values().get((cls.type, name), [])] if isinstance(v, (int, float))]
        )
        low, high = _bounds(info, step)
        low = -FLOAT_LIMIT if low is None else float(low)
        if spec.default is None and not spec.required:
            low = min(low, 0.0)
        opts.update(min=low, max=FLOAT_LIMIT if high is None else float(high), step=step, round=step)
        return ["FLOAT", {"default": default if default is not None else max(low, 0.0), **opts}]
    if port == "BOOLEAN":
        return ["BOOLEAN", {"default": bool(default), **opts}]
    return ["STRING", {"default": default if default is not None else "", "multiline": name.endswith("prompt"), **opts}]


def node_info(cls: type[Node], input_dir: Path) -> dict[str, Any]:
    described = cls.describe()["inputs"]
    required: dict[str, Any] = {}
    optional: dict[str, Any] = {}
    for name, spec in cls.input_specs.items():
        shown = input_spec(cls, name, spec, described[name], input_dir)
        (required if shown_required(cls, name) else optional)[name] = shown
    outputs = output_names(cls)
    return {
        "input": {"required": required, "optional": optional},
        "input_order": {"required": list(required), "optional": list(optional)},
        "output": [cls.output_specs[o].port.name for o in outputs],
        "output_is_list": [False] * len(outputs),
        "output_name": outputs,
        "output_tooltips": [cls.output_specs[o].description for o in outputs],
        "name": cls.type,
        "display_name": cls.type,
        "description": inspect.cleandoc(cls.description),
        "category": cls.category,
        "output_node": cls.output_node,
        "python_module": cls.__module__,
    }


def load_image_info(input_dir: Path) -> dict[str, Any]:
    """The one LoadImage: ComfyUI's (image with its upload button; IMAGE, MASK), then
    nodeflow's optional inputs (max_size, url, sha256)."""
    nodes = load_nodes()
    info = node_info(nodes[COMFY_LOAD_IMAGE], input_dir)
    info.update(name=LOAD_IMAGE, display_name=LOAD_IMAGE)
    if LOAD_IMAGE in nodes:
        ours = nodes[LOAD_IMAGE]
        described = ours.describe()["inputs"]
        for name in NODEFLOW_LOAD_IMAGE_EXTRAS:
            if name in ours.input_specs:
                info["input"]["optional"][name] = input_spec(
                    ours, name, ours.input_specs[name], described[name], input_dir
                )
        info["input_order"]["optional"] = list(info["input"]["optional"])
        info["description"] += (
            "\n\nnodeflow's extras: max_size (longest side), url and sha256 (download a missing file once)."
        )
    return info


def object_info(input_dir: Path, only: str | None = None) -> dict[str, Any]:
    nodes = load_nodes()
    shown = sorted(n for n in nodes if n not in HIDDEN_TYPES)
    names = shown if only is None else [only] if only in shown else []
    out = {}
    for name in names:
        if name == LOAD_IMAGE and COMFY_LOAD_IMAGE in nodes:
            out[name] = load_image_info(input_dir)
        else:
            out[name] = node_info(nodes[name], input_dir)
    return out
