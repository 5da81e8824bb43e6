"""The node declaration: one pydantic schema per node drives validation, the
`nodeflow nodes` listing, the graph JSON Schema and the HTTP catalogue.

    class Blur(Node):
        '''Gaussian blur.'''
        version = "1"
        class Inputs(NodeInputs):
            image: Any = Input(port=IMAGE, description="image to blur")
            radius: float = Input(2.0, ge=0, le=100, description="sigma in pixels")
        class Outputs(NodeOutputs):
            image: Any = Output(IMAGE, "blurred image")
        def run(self, image, radius):
            return {"image": ...}
"""

from __future__ import annotations

import builtins
import sys
import types as pytypes
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.fields import FieldInfo, PydanticUndefined

from .registry import register
from .types import BOOLEAN, FLOAT, INT, STRING, PortType, get_port_type


class NodeInputs(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")


class NodeOutputs(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")


class InputError(Exception):
    """Bad value for one input of one node; the engine adds the node id."""

    def __init__(self, input: str | None, message: str):
        super().__init__(message)
        self.input = input
        self.message = message


def Input(
    default: Any = PydanticUndefined,
    *,
    port: PortType | None = None,
    description: str = "",
    file: bool = False,
    names_file: bool = False,
    **constraints: Any,
) -> Any:
    """An input field. No default means required; any default (even None) means optional.
    `file=True` marks a path whose file content goes into the cache key. `names_file=True`
    marks text that names a file or folder: it is checked for NUL bytes and over-long names."""
    extra: dict[str, Any] = {
        "nodeflow_port": port.name if port else None,
        "nodeflow_file": file,
        "nodeflow_names_file": names_file,
    }
    return Field(default, description=description, json_schema_extra=extra, **constraints)


def Output(port: PortType, description: str = "") -> Any:
    return Field(None, description=description, json_schema_extra={"nodeflow_port": port.name})


@dataclass
class InputSpec:
    name: str
    port: PortType
    required: bool
    default: Any
    description: str
    choices: list | None
    file: bool
    adapter: TypeAdapter | None  # None: link-only (no literal allowed)
    literal_schema: dict | None = None
    names_file: bool = False

    def validate_literal(self, value: Any) -> Any:
        if self.adapter is None:
            raise TypeError(f"input {self.name!r} takes only a link")
        return self.adapter.validate_python(value, strict=True)


@dataclass
class OutputSpec:
    name: str
    port: PortType
    description: str


_LITERAL_PORTS = {bool: BOOLEAN, int: INT, float: FLOAT, str: STRING}


def _strip_optional(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, pytypes.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _port_of(annotation: Any) -> tuple[PortType | None, list | None]:
    base = _strip_optional(annotation)
    if typing.get_origin(base) is Literal:
        choices = list(typing.get_args(base))
        return _LITERAL_PORTS.get(type(choices[0])), choices
    return _LITERAL_PORTS.get(base), None


def _schema_extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def _input_spec(name: str, info: FieldInfo) -> InputSpec:
    extra = _schema_extra(info)
    declared = extra.get("nodeflow_port")
    inferred, choices = _port_of(info.annotation)
    if declared:
        port = get_port_type(str(declared))
    elif inferred:
        port = inferred
    else:
        raise TypeError(f"input {name!r}: give port= for a non-literal annotation")
    adapter = schema = None
    if port.literal is not None:
        annotated = typing.Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
        adapter = TypeAdapter[Any](cast(Any, annotated))
        schema = adapter.json_schema()
        if info.description:
            schema["description"] = info.description
    required = info.is_required()
    return InputSpec(
        name=name,
        port=port,
        required=required,
        default=None if required else info.default,
        description=info.description or "",
        choices=choices,
        file=bool(extra.get("nodeflow_file")),
        adapter=adapter,
        literal_schema=schema,
        names_file=bool(extra.get("nodeflow_names_file")),
    )


class Node:
    """Base class of every node. Subclasses declare `Inputs`, `Outputs` and `run`."""

    type: ClassVar[str]
    version: ClassVar[str] = "1"
    category: ClassVar[str] = "misc"
    description: ClassVar[str] = ""
    # Output nodes have side effects (files); they always run and are never cached.
    output_node: ClassVar[bool] = False
    # A node whose image output is a chart (a loss plot), never the job's main image.
    plot: ClassVar[bool] = False
    # A node that is not deterministic is re-run every time, unless its seed input is set.
    deterministic: ClassVar[bool] = True
    seed_input: ClassVar[str | None] = None
    # Frameworks the node can run on (the first is its default; device probing asks the one it
    # runs on) and devices it can run on.
    frameworks: ClassVar[tuple[str, ...]] = ()
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    # A literal input that chooses the framework (VGGFeatures' `framework`). Nodes that take a
    # framework-bound value (see PortType.framework_bound) run on that value's framework.
    framework_input: ClassVar[str | None] = None

    # builtins.type: inside this class body `type` is the node's type name.
    Inputs: ClassVar[builtins.type[NodeInputs]] = NodeInputs
    Outputs: ClassVar[builtins.type[NodeOutputs]] = NodeOutputs
    input_specs: ClassVar[dict[str, InputSpec]] = {}
    output_specs: ClassVar[dict[str, OutputSpec]] = {}

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        cls.type = cls.__dict__.get("type", cls.__name__)
        cls.description = cls.__dict__.get("description") or (cls.__doc__ or "").strip()
        cls.input_specs = {n: _input_spec(n, f) for n, f in cls.Inputs.model_fields.items()}
        cls.output_specs = {}
        for n, f in cls.Outputs.model_fields.items():
            port = get_port_type(str(_schema_extra(f)["nodeflow_port"]))
            cls.output_specs[n] = OutputSpec(n, port, f.description or "")
        if cls.seed_input and cls.seed_input not in cls.input_specs:
            raise TypeError(f"{cls.type}: seed_input {cls.seed_input!r} is not an input")
        register(cls)

    def __init__(self, ctx: Any):
        self.ctx = ctx

    def run(self, **inputs: Any) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def check(cls, inputs: dict[str, Any], settings: Any) -> None:
        """Validate literal inputs against the environment before anything runs (a path
        stays inside its directory, a format is supported). Linked inputs are absent from
        `inputs`. Raise InputError: it is reported like any other validation error."""

    @classmethod
    def check_framework(cls, framework: str | None, inputs: dict[str, Any]) -> None:
        """Validate literal inputs against the framework the node's links bind it to (which
        `check` cannot see). Raise InputError: it is reported like any other validation error."""

    @classmethod
    def fingerprint(cls, inputs: dict[str, Any], settings: Any) -> Any:
        """Extra cache-key material (e.g. the hash of a file the node reads).
        May raise InputError, which is reported as a validation error."""
        return None

    @classmethod
    def downloads(cls, inputs: dict[str, Any], settings: Any) -> list[tuple[str, str]]:
        """What running now would download: [(input, URL or source)], for a server that
        refuses downloads to say so before anything runs. Called after check()."""
        return []

    @classmethod
    def family(cls) -> tuple[str, str | None]:
        """The node's family (its module's package: nodes/nst -> "nst") and the pip extra it
        needs: `EXTRA` of its own module, else of the nearest package above it that declares
        one (nodes/nst/__init__.py: EXTRA = "nst"); None or "" means the base install."""
        parts = cls.__module__.split(".")
        family = parts[-2] if len(parts) > 1 else parts[0]
        for i in range(len(parts), 0, -1):
            module = sys.modules.get(".".join(parts[:i]))
            if module is not None and hasattr(module, "EXTRA"):
                return family, module.EXTRA or None
        return family, None

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The catalogue entry (used by `nodeflow nodes --json` and the HTTP API)."""

        def inp(s: InputSpec) -> dict[str, Any]:
            d = {"type": s.port.name, "required": s.required, "description": s.description}
            if not s.required:
                d["default"] = s.default
            if s.choices:
                d["choices"] = s.choices
            if s.literal_schema:
                # Optional inputs nest their constraints in anyOf: [{...}, {"type": "null"}].
                for part in [s.literal_schema, *s.literal_schema.get("anyOf", [])]:
                    for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                        if k in part:
                            d[k] = part[k]
            return d

        family, extra = cls.family()
        return {
            "type": cls.type,
            "version": cls.version,
            "category": cls.category,
            "family": family,
            "extra": extra,
            "description": cls.description,
            "output_node": cls.output_node,
            "deterministic": cls.deterministic,
            "devices": list(cls.devices),
            "frameworks": list(cls.frameworks),
            "inputs": {n: inp(s) for n, s in cls.input_specs.items()},
            "outputs": {n: {"type": s.port.name, "description": s.description} for n, s in cls.output_specs.items()},
        }
