"""The ``agentledger`` command.

Client commands (import, demo) need only the base install; server commands (serve) need the
``server`` extra and say so when it is missing.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from agentledger.schemas import environment as env

SERVER_EXTRA_HINT = "this command needs the server extra: pip install 'agentledger[server]'"


def _default_endpoint() -> str:
    return os.environ.get(env.AGENTLEDGER_ENDPOINT) or os.environ.get(
        env.OTEL_EXPORTER_OTLP_ENDPOINT, env.DEFAULT_ENDPOINT
    )


def _add_endpoint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        default=_default_endpoint(),
        help="base URL of the agentledger collector (default: %(default)s)",
    )


def _serve(args: argparse.Namespace) -> int:
    try:
        from agentledger.collector.server import serve
    except ImportError as exc:
        print(f"agentledger serve: {SERVER_EXTRA_HINT} ({exc})", file=sys.stderr)
        return 2
    return serve(host=args.host, port=args.port, store=args.store)


def _import_tau2(args: argparse.Namespace) -> int:
    from agentledger.importers.tau2 import import_files

    return import_files(args.paths, endpoint=args.endpoint)


def _demo(args: argparse.Namespace) -> int:
    from agentledger.demo import run_demo

    return run_demo(endpoint=args.endpoint, seed=args.seed, runs=args.runs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentledger", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the collector, API and dashboard")
    serve.add_argument("--host", default=os.environ.get(env.AGENTLEDGER_HOST, env.DEFAULT_HOST))
    serve.add_argument(
        "--port", type=int, default=int(os.environ.get(env.AGENTLEDGER_PORT, env.DEFAULT_PORT))
    )
    serve.add_argument(
        "--store",
        default=os.environ.get(env.AGENTLEDGER_STORE),
        help=f"chdb:///path or http://host:8123 (default: ./{env.DEFAULT_STORE_DIR})",
    )
    serve.set_defaults(handler=_serve)

    importer = commands.add_parser("import", help="replay recorded agent runs into a collector")
    sources = importer.add_subparsers(dest="source", required=True)
    tau2 = sources.add_parser("tau2", help="τ²-bench trajectory files")
    tau2.add_argument("paths", nargs="+", metavar="PATH")
    _add_endpoint(tau2)
    tau2.set_defaults(handler=_import_tau2)

    demo = commands.add_parser("demo", help="send a seeded, realistic mix of agent runs")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--runs", type=int, default=400, help="runs to send (default: %(default)s)")
    _add_endpoint(demo)
    demo.set_defaults(handler=_demo)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``agentledger`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
