"""The `nodeflow` command. Only argparse at import time: start-up must stay fast.

Commands beyond the engine's come from the entry-point group `nodeflow.commands`: each names
a function that takes the subparsers, adds its subcommand and sets `handler` (a function of
the parsed arguments that returns the exit code). nodeflow's own `serve` is one
(nodeflow.server.command:register): the CLI never imports the web server itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from functools import partial
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_CANCELLED = 0, 1, 2, 130
COMMAND_GROUP = "nodeflow.commands"
# nodeflow's own commands that live outside the CLI: (what it does, the extra it needs). Where
# no entry point provides one (metadata from an older install), it is listed all the same and
# says how to install it.
OWN_PLUGIN_COMMANDS = {"serve": ("start the HTTP API", "server")}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nodeflow", description="Run node graphs of image operations.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a graph (.json, or a PNG that nodeflow saved)")
    run.add_argument("graph")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE.INPUT=VALUE",
        help="override an input; VALUE is JSON if it parses, else text",
    )
    run.add_argument("--out", metavar="DIR", help="output directory (default ./outputs)")
    run.add_argument(
        "--input-dir", metavar="DIR", help="where input paths resolve (default $NODEFLOW_INPUT_DIR or ./inputs)"
    )
    run.add_argument("--device", help="default device: auto, cpu, cuda, cuda:N, mps")
    run.add_argument("--no-cache", action="store_true", help="don't read or write the disk cache")
    run.add_argument(
        "--cache-dir", metavar="DIR", help="disk cache (default $NODEFLOW_CACHE_DIR or the user cache dir)"
    )
    run.add_argument("--only", action="append", metavar="NODE", help="run only what NODE needs")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    run.add_argument("--run-log", metavar="FILE", help="write each node's state as JSON (for `nodeflow show`)")
    run.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="NODE.INPUT=V1,V2,...",
        help="run every combination of these values (repeatable) and save a labelled "
        "contact sheet; values are JSON if they parse, else text",
    )
    run.add_argument("--sweep-limit", type=int, metavar="N", help="most variations allowed (default 64)")
    run.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="with --sweep: run the variations on a Ray cluster "
        "(auto, or the head's host:port), as many at once as it has CPUs (or GPUs)",
    )

    val = sub.add_parser("validate", help="check graphs without running them")
    val.add_argument("graphs", nargs="+")

    nodes = sub.add_parser("nodes", help="list the node types")
    nodes.add_argument("--json", action="store_true")

    sub.add_parser("schema", help="print the JSON Schema of graph files")

    show = sub.add_parser("show", help="draw a graph as SVG or PNG")
    show.add_argument("graph")
    show.add_argument("-o", "--output", required=True, metavar="FILE.svg|FILE.png")
    show.add_argument(
        "--run-log",
        metavar="LOG",
        help="colour nodes by state: a `nodeflow run --run-log` file, or a GET /jobs/ID answer (file or URL)",
    )
    show.add_argument("--force", action="store_true", help="replace an existing output file")

    cache = sub.add_parser("cache", help="show or clear the disk cache")
    cache.add_argument("--cache-dir", metavar="DIR")
    cache.add_argument("--clear", action="store_true", help="delete every entry")

    conv = sub.add_parser("convert", help="ComfyUI API prompts and editor workflows <-> nodeflow graphs")
    conv.add_argument("input", help="a nodeflow graph (.json or PNG), a ComfyUI workflow or API prompt")
    conv.add_argument("output")
    conv.add_argument(
        "--to",
        choices=["graph", "workflow", "api"],
        help="what to write (default: a graph becomes a workflow, anything else a graph)",
    )
    conv.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")

    _add_plugin_commands(sub)
    return p


def _add_plugin_commands(sub: argparse._SubParsersAction) -> None:
    from importlib.metadata import entry_points

    added: set[str] = set()
    for ep in entry_points(group=COMMAND_GROUP):
        if ep.name in added or ep.name in sub.choices:
            continue  # the first distribution on the path wins
        try:
            ep.load()(sub)
        except Exception as exc:  # a broken plugin must not break the tool
            print(f"nodeflow: command {ep.name!r} ({ep.value}) did not load: {exc}", file=sys.stderr)
            continue
        added.add(ep.name)
    for name, (summary, extra) in OWN_PLUGIN_COMMANDS.items():
        if name not in added and name not in sub.choices:
            missing = sub.add_parser(
                name, help=f"{summary} (needs nodeflow[{extra}])", add_help=False, prefix_chars="\0"
            )
            missing.add_argument("args", nargs="*")  # whatever it is given: no option of its own
            missing.set_defaults(handler=lambda args, name=name, extra=extra: _not_installed(name, extra))


def _not_installed(name: str, extra: str) -> int:
    print(
        f"nodeflow {name}: error: this command is not installed. Install it with the {extra!r} extra: "
        f'pip install "nodeflow[{extra}]" (from a checkout: pip install -e ".[{extra}]")',
        file=sys.stderr,
    )
    return EXIT_INVALID


def _print_issues(issues) -> None:
    print(f"error: invalid graph ({len(issues)} problem{'s' if len(issues) != 1 else ''}):", file=sys.stderr)
    for issue in issues:
        print(f"  - {issue}  [{issue.code}]", file=sys.stderr)


def _parse_sets(items: list[str]) -> dict:
    from nodeflow.errors import GraphInvalid, Issue, shown
    from nodeflow.jsonload import clean, loads, path_text

    out, issues = {}, []
    for item in items:
        target, eq, raw = item.partition("=")
        if not eq:
            issues.append(Issue("invalid_override", f"--set {shown(item)}: expected NODE.INPUT=VALUE"))
            continue
        try:
            value, problems = loads(raw)
        except ValueError:  # not JSON: the text itself
            value, problems = clean(raw)
        node, _, inp = target.partition(".")
        issues += [
            Issue(p.code, f"--set {shown(target)}: {path_text(p.path)}: {p.message}", node or None, inp or None)
            for p in problems
        ]
        out[target] = value
    if issues:
        raise GraphInvalid(issues, partial=out)
    return out


def cmd_run(args) -> int:
    from nodeflow.cache import DiskCache, default_cache_dir, disk_budget
    from nodeflow.cli.render import ConsoleRenderer
    from nodeflow.context import Settings, default_input_dir, default_output_dir
    from nodeflow.executor import Executor
    from nodeflow.graph import read_graph_file
    from nodeflow.validate import plan_graph

    settings = Settings(
        input_dir=Path(args.input_dir) if args.input_dir else default_input_dir(),
        output_dir=Path(args.out) if args.out else default_output_dir(),
    )
    if args.sweep:
        from nodeflow.cli.sweep_run import run_sweep
        from nodeflow.validate import read_graph

        graph, issues = read_graph(lambda: read_graph_file(args.graph), lambda: _parse_sets(args.set))
        status = run_sweep(graph, settings, args, issues)
        return {"succeeded": EXIT_OK, "failed": EXIT_FAILED}.get(status, EXIT_CANCELLED)
    plan = plan_graph(
        lambda: read_graph_file(args.graph),
        lambda: _parse_sets(args.set),
        settings=settings,
        device=args.device,
        only=args.only,
    )
    disk = None if args.no_cache else DiskCache(Path(args.cache_dir) if args.cache_dir else default_cache_dir())
    renderer = ConsoleRenderer(plan, quiet=args.quiet)
    try:
        result = Executor(disk=disk).run(plan, emit=renderer)
    finally:
        renderer.close()
        if disk is not None:
            disk.prune(disk_budget())
    if args.run_log:
        from nodeflow.cli.runlog import run_log, write_run_log

        write_run_log(Path(args.run_log), run_log(result, args.graph))
    if result.status == "failed":
        print(f"error: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK if result.status == "succeeded" else EXIT_CANCELLED


def cmd_validate(args) -> int:
    from nodeflow.errors import GraphInvalid
    from nodeflow.graph import read_graph_file
    from nodeflow.validate import plan_graph

    status = EXIT_OK
    for path in args.graphs:
        try:
            # No framework is loaded to check devices, unless a node asks for a GPU by name.
            plan = plan_graph(partial(read_graph_file, path), probe=False)
            print(f"{path}: ok ({len(plan.graph.nodes)} nodes)")
        except GraphInvalid as exc:
            print(f"{path}:", file=sys.stderr)
            _print_issues(exc.issues)
            status = EXIT_INVALID
    return status


def cmd_nodes(args) -> int:
    from nodeflow.registry import load_nodes

    nodes = load_nodes()
    if args.json:
        print(json.dumps([c.describe() for _, c in sorted(nodes.items())], indent=2, default=str))
        return EXIT_OK
    for name, cls in sorted(nodes.items(), key=lambda kv: (kv[1].category, kv[0])):
        d = cls.describe()
        summary = d["description"].splitlines()[0] if d["description"] else ""
        print(f"{name}  v{d['version']}  [{d['category']}]  {summary}")
        for iname, i in d["inputs"].items():
            extra = "" if i["required"] else f" = {json.dumps(i.get('default'))}"
            if "choices" in i:
                extra += f"  one of {i['choices']}"
            rng = [f"{k}={i[k]}" for k in ("minimum", "maximum") if k in i]
            print(f"    in  {iname}: {i['type']}{extra}{'  ' + ' '.join(rng) if rng else ''}")
        for oname, o in d["outputs"].items():
            print(f"    out {oname}: {o['type']}")
    return EXIT_OK


def cmd_schema(args) -> int:
    from nodeflow.schema import graph_schema

    print(json.dumps(graph_schema(), indent=2))
    return EXIT_OK


def cmd_show(args) -> int:
    from nodeflow.cache import atomic_write
    from nodeflow.cli.runlog import read_states
    from nodeflow.drawing.draw import render
    from nodeflow.errors import GraphInvalid, Issue
    from nodeflow.graph import read_graph_file

    out = Path(args.output)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("svg", "png"):
        raise GraphInvalid([Issue("invalid_output", f"-o {out}: the name must end in .svg or .png")])
    if out.exists() and not args.force:
        raise GraphInvalid([Issue("output_exists", f"-o {out}: the file exists (--force replaces it)")])
    states = read_states(args.run_log) if args.run_log else None
    data = render(read_graph_file(args.graph), fmt, states)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, data)
    print(f"wrote {out}")
    return EXIT_OK


def cmd_cache(args) -> int:
    from nodeflow.cache import DiskCache, default_cache_dir, disk_budget

    disk = DiskCache(Path(args.cache_dir) if args.cache_dir else default_cache_dir())
    if args.clear:
        freed = disk.prune(0)
        print(f"cleared {disk.root}: {freed / 1e6:.1f} MB freed")
        return EXIT_OK
    entries = disk.entries()
    size = sum(e[1] for e in entries)
    print(
        f"{disk.root}: {len(entries)} entries, {size / 1e6:.1f} MB "
        f"(limit {disk_budget() / 1e9:.0f} GB, $NODEFLOW_DISK_CACHE_GB)"
    )
    return EXIT_OK


def cmd_convert(args) -> int:
    from nodeflow.comfy.convert import convert_file

    kind = convert_file(args.input, args.output, args.to, args.force)
    print(f"{args.output}: {kind}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """The `nodeflow` command. Output piped into a reader that stops early (`| head`) ends the
    command quietly, with the exit status of a closed pipe, whatever the subcommand."""
    try:
        status = _main(argv)
        sys.stdout.flush()  # here, not at exit, where a closed pipe can't be caught
        return status
    except BrokenPipeError:
        _quiet_stdout()
        return 128 + 13  # SIGPIPE, as a shell reports a command its reader stopped


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: Python's exit flushes stdout again, and that flush would
    print a second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.command:
        _parser().print_help()
        return EXIT_INVALID
    handler = (
        getattr(args, "handler", None)
        or {
            "run": cmd_run,
            "validate": cmd_validate,
            "nodes": cmd_nodes,
            "schema": cmd_schema,
            "show": cmd_show,
            "cache": cmd_cache,
            "convert": cmd_convert,
        }[args.command]
    )
    from nodeflow.errors import GraphInvalid

    try:
        return handler(args)
    except GraphInvalid as exc:
        _print_issues(exc.issues)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return EXIT_CANCELLED
