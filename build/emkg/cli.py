"""The ``emkg`` command: argument parsing only; every command's work lives in its own module."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

from . import __version__
from .errors import EXIT_USAGE, EmkgError
from .heap import bulk

log = logging.getLogger("emkg")

# commands that keep running (a server): they keep the cyclic garbage collector (see ``heap.py``);
# ``bench`` times other processes and runs the naive pipeline as it is usually run, collector on
LONG_RUNNING = frozenset({"serve", "bench"})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emkg",
        description="East Midlands children's services knowledge graph: validate, format, query and publish.",
        epilog="Exit codes: 0 success, 1 data problems, 2 usage or environment errors, 3 endpoint errors.",
    )
    parser.add_argument("--version", action="version", version=f"emkg {__version__}")
    _common_options(parser, default_root=None, default_verbose=0)
    common = argparse.ArgumentParser(add_help=False)
    _common_options(common, default_root=argparse.SUPPRESS, default_verbose=argparse.SUPPRESS)
    commands = _Commands(parser.add_subparsers(dest="command", metavar="COMMAND", required=True), common)

    validate = commands.add_parser("validate", help="check syntax, SHACL shapes and QC queries")
    validate.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                          help="extra Turtle files or folders to check with the project's graph")
    validate.add_argument("--format", choices=("text", "json", "github"), default="text")
    validate.add_argument("--strict", action="store_true", help="warnings fail too")
    validate.add_argument("--no-qc", action="store_true", help="skip the queries in queries/qc/")

    fmt = commands.add_parser("fmt", help="rewrite Turtle files in the canonical layout")
    fmt.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders (default: ontology, data, shapes)")
    fmt.add_argument("--check", action="store_true", help="change nothing; exit 1 if any file would change")

    query = commands.add_parser("query", help="run a stored view (or any query) and print its rows")
    query.add_argument("name", nargs="?", help="the view's name (a file queries/NAME.rq)")
    query.add_argument("--list", action="store_true", help="list the stored views")
    query.add_argument("--file", type=Path, help="run this .rq file instead of a stored view")
    query.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="bind a declared parameter")
    query.add_argument("--format", choices=("table", "csv", "tsv", "json"), default="table")
    _endpoint_options(query, update=False)
    query.add_argument("--graph", help="named graph to query (sent as default-graph-uri; env EMKG_GRAPH)")

    build = commands.add_parser("build", help="validate, then publish dumps, views and the site")
    build.add_argument("--out", type=Path, help="output folder (default: public/)")
    build.add_argument("--no-site", action="store_true", help="dumps and views only")
    build.add_argument("--full", action="store_true", help="ignore the incremental build cache")
    build.add_argument("--jobs", type=int, default=0, help="page-rendering processes (default: CPU count)")

    push = commands.add_parser("push", help="load the published graph into a SPARQL server, atomically")
    _endpoint_options(push, update=True)
    push.add_argument("--graph", help="target named graph IRI (default: the server's default graph)")
    push.add_argument("--batch-size", type=int, default=5000, help="triples per SPARQL Update request")

    serve = commands.add_parser("serve", help="serve the built graph from a local Oxigraph SPARQL server")
    serve.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=7878)

    bench = commands.add_parser("bench", help="synthetic data and benchmarks")
    bench_commands = _Commands(bench.add_subparsers(dest="bench_command", metavar="ACTION", required=True), common)
    generate = bench_commands.add_parser("generate", help="write a synthetic project tree")
    generate.add_argument("--triples", type=int, required=True)
    generate.add_argument("--out", type=Path, required=True)
    generate.add_argument("--faults", type=int, default=0, help="deliberate violations to include")
    generate.add_argument("--seed", type=int, default=1)
    run = bench_commands.add_parser("run", help="time validate and build against the naive pipeline")
    run.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated triple counts")
    run.add_argument("--results", type=Path, default=Path("bench/results"))
    run.add_argument("--naive-limit", type=int, default=100000, help="largest size to run the naive pipeline at")
    run.add_argument("--repeat", type=int, default=3,
                     help="times each command is run up to 100k triples and on the real data (the median run is recorded)")
    return parser


class _Commands:
    """Sub-command registry that lets --root and -v stand before or after the command name."""

    def __init__(self, subparsers, common: argparse.ArgumentParser) -> None:
        self._subparsers = subparsers
        self._common = common

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        return self._subparsers.add_parser(name, parents=[self._common], **kwargs)


def _common_options(parser: argparse.ArgumentParser, *, default_root, default_verbose) -> None:
    parser.add_argument("--root", type=Path, default=default_root,
                        help="the project folder (default: found from the current folder)")
    parser.add_argument("-v", "--verbose", action="count", default=default_verbose,
                        help="more diagnostics on stderr (-vv: debug)")


def _endpoint_options(parser: argparse.ArgumentParser, *, update: bool) -> None:
    parser.add_argument("--endpoint", help="SPARQL query endpoint URL (env EMKG_ENDPOINT)")
    if update:
        parser.add_argument("--update-endpoint", help="SPARQL update endpoint URL (env EMKG_UPDATE_ENDPOINT)")
        parser.add_argument("--store-endpoint", help="Graph Store HTTP Protocol URL (env EMKG_STORE_ENDPOINT)")
    parser.add_argument("--user", help="user name (env EMKG_USER)")
    parser.add_argument("--password", help="password (env EMKG_PASSWORD; prefer the environment)")
    parser.add_argument("--auth", choices=("basic", "digest"), default="basic", help="HTTP authentication scheme")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument("--retries", type=int, default=3, help="retries on connection errors and 5xx")


def _run(args: argparse.Namespace) -> int:
    from .project import open_project

    project = open_project(args.root)
    if args.command == "validate":
        from .validate import run_validate

        return run_validate(project, args.paths, fmt=args.format, strict=args.strict, qc=not args.no_qc)
    if args.command == "fmt":
        from .fmt import run_fmt

        return run_fmt(project, args.paths, check=args.check)
    if args.command == "query":
        from .views import run_query

        return run_query(project, args)
    if args.command == "build":
        from .publish import run_build

        return run_build(project, args)
    if args.command == "push":
        from .endpoint import run_push

        return run_push(project, args)
    if args.command == "serve":
        from .endpoint import run_serve

        return run_serve(project, args)
    if args.command == "bench":
        from .bench import run_bench

        return run_bench(project, args)
    raise AssertionError(args.command)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="emkg: %(levelname)s: %(message)s", stream=sys.stderr)
    try:
        # a one-shot command pauses the collector: its passes cost more than the garbage they find
        with nullcontext() if args.command in LONG_RUNNING else bulk():
            return _run(args)
    except EmkgError as exc:
        print(f"emkg: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("emkg: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the last line of defence: never a traceback for users
        log.debug("internal error", exc_info=True)
        print(f"emkg: internal error: {type(exc).__name__}: {exc} (run with -vv for details)", file=sys.stderr)
        return EXIT_USAGE


def run() -> None:
    """The installed ``emkg`` command: :func:`main`, then a quick exit.

    A national build leaves gigabytes of objects (the graph, the pages' model) that the interpreter
    would free one by one at exit, seconds of work for nothing. So once the output is flushed and
    logging shut down, the process ends at once (``os._exit``), unless a child process is still
    running (then the usual exit waits for it). Nothing emkg writes depends on exit handlers: every
    file is complete before ``main`` returns."""
    code = main()
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError, OSError):
        pass  # a closed pipe: the output went as far as it could
    logging.shutdown()
    if multiprocessing.active_children():
        sys.exit(code)
    try:
        sys.stderr.flush()
    except (ValueError, OSError):
        pass
    os._exit(code)


if __name__ == "__main__":
    run()
