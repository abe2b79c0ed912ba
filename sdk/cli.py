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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agentledger")
    except PackageNotFoundError:
        return "unknown"


def _add_endpoint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        default=_default_endpoint(),
        help="base URL of the agentledger collector (default: %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"key sent as Authorization: Bearer (default: ${env.AGENTLEDGER_API_KEY})",
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


def _import_otlp(args: argparse.Namespace) -> int:
    from agentledger.importers.otlp import import_files

    return import_files(args.paths, endpoint=args.endpoint)


def _import_langfuse(args: argparse.Namespace) -> int:
    from agentledger.importers.langfuse import import_files

    return import_files(args.paths, endpoint=args.endpoint, project=args.project)


def _import_swebench(args: argparse.Namespace) -> int:
    from agentledger.importers.swebench import import_file

    return import_file(args.path, endpoint=args.endpoint)


def _import_aider(args: argparse.Namespace) -> int:
    from agentledger.importers.aider import import_files

    return import_files(args.paths, endpoint=args.endpoint)


def _demo(args: argparse.Namespace) -> int:
    from agentledger.demo import run_demo

    return run_demo(endpoint=args.endpoint, seed=args.seed, runs=args.runs)


def _sql(args: argparse.Namespace) -> int:
    from agentledger.sql_console import run_sql

    return run_sql(args.query, endpoint=args.endpoint, store=args.store, max_rows=args.max_rows)


def _schema(args: argparse.Namespace) -> int:
    from agentledger.schemas import cluster

    try:
        layout = None
        if args.cluster:
            default, by_table = cluster.parse_shard_keys(args.shard_key)
            layout = cluster.ClusterLayout(args.cluster, shard_key=default, shard_keys=by_table)
            if args.database:
                layout = layout.in_database(args.database)
        elif args.shard_key or args.database:
            raise cluster.ClusterSchemaError("--shard-key and --database need --cluster")
        sys.stdout.write(cluster.schema_ddl(layout))
    except cluster.ClusterSchemaError as exc:
        print(f"agentledger schema: {exc}", file=sys.stderr)
        return 2
    return 0


def _alerts_test(args: argparse.Namespace) -> int:
    path = args.config or os.environ.get(env.AGENTLEDGER_ALERTS_FILE)
    if not path:
        print(
            "agentledger alerts test: no alerts file: pass --config FILE or set "
            f"{env.AGENTLEDGER_ALERTS_FILE}",
            file=sys.stderr,
        )
        return 2
    try:
        from agentledger.collector.alerts import send_test_notification
    except ImportError as exc:
        print(f"agentledger alerts test: {SERVER_EXTRA_HINT} ({exc})", file=sys.stderr)
        return 2
    return send_test_notification(path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentledger",
        description="agentledger: what each correct outcome of your LLM agent costs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
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
    otlp = sources.add_parser("otlp", help="OTLP/JSON trace export files")
    otlp.add_argument("paths", nargs="+", metavar="FILE")
    otlp.set_defaults(handler=_import_otlp)
    langfuse = sources.add_parser("langfuse", help="Langfuse trace exports (*.trace.json)")
    langfuse.add_argument("paths", nargs="+", metavar="FILE")
    langfuse.add_argument("--project", default="", help="agentledger.project of the spans")
    langfuse.set_defaults(handler=_import_langfuse)
    swebench = sources.add_parser("swebench", help="SWE-bench leaderboards.json (bash-only)")
    swebench.add_argument("path", metavar="FILE")
    swebench.set_defaults(handler=_import_swebench)
    aider = sources.add_parser("aider", help="Aider leaderboard YAML files")
    aider.add_argument("paths", nargs="+", metavar="FILE")
    aider.set_defaults(handler=_import_aider)
    for source in (otlp, langfuse, swebench, aider):
        _add_endpoint(source)

    demo = commands.add_parser("demo", help="send a seeded, realistic mix of agent runs")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--runs", type=int, default=400, help="runs to send (default: %(default)s)")
    _add_endpoint(demo)
    demo.set_defaults(handler=_demo)

    schema = commands.add_parser("schema", help="print the DDL the collector applies")
    schema.add_argument(
        "--cluster",
        default=os.environ.get(env.AGENTLEDGER_CLUSTER),
        help="ClickHouse cluster name: print the ON CLUSTER form (replicated + distributed)",
    )
    schema.add_argument(
        "--shard-key",
        action="append",
        default=[],
        metavar="[TABLE=]EXPR",
        help="sharding key of every table, or of one table; repeatable "
        "(default: cityHash64 of the de-duplication key without its last column)",
    )
    schema.add_argument(
        "--database",
        default=None,
        help="database the Distributed tables point at (default: currentDatabase() where each "
        "statement runs; the collector names its own)",
    )
    schema.set_defaults(handler=_schema)

    sql = commands.add_parser(
        "sql", help="run one read-only SELECT over the ledger's tables and views"
    )
    sql.add_argument("query", metavar="SQL", help='e.g. "SELECT * FROM runs LIMIT 10"')
    sql.add_argument(
        "--endpoint",
        default=None,
        help="query through this collector (default: the store directly, or the collector "
        "at AGENTLEDGER_ENDPOINT when it holds the store)",
    )
    sql.add_argument(
        "--store",
        default=os.environ.get(env.AGENTLEDGER_STORE),
        help=f"chdb:///path or http://host:8123 (default: ./{env.DEFAULT_STORE_DIR})",
    )
    sql.add_argument("--max-rows", type=int, default=10_000, help="(default: %(default)s)")
    sql.add_argument(
        "--api-key",
        default=None,
        help=f"admin key of project '*' sent to the collector (default: ${env.AGENTLEDGER_API_KEY})",
    )
    sql.set_defaults(handler=_sql)

    alerts = commands.add_parser("alerts", help="alert rules and notification channels")
    alert_commands = alerts.add_subparsers(dest="alerts_command", required=True)
    alerts_test = alert_commands.add_parser(
        "test", help="send a test notification to every channel of the alerts file"
    )
    alerts_test.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help=f"the alerts TOML file (default: ${env.AGENTLEDGER_ALERTS_FILE})",
    )
    alerts_test.set_defaults(handler=_alerts_test)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``agentledger`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    key = getattr(args, "api_key", None)
    if key is None:
        return int(args.handler(args) or 0)
    # The exporters read the key from the environment (agentledger.credentials); it is set
    # only for this command, and never printed.
    previous = os.environ.get(env.AGENTLEDGER_API_KEY)
    os.environ[env.AGENTLEDGER_API_KEY] = key
    try:
        return int(args.handler(args) or 0)
    finally:
        if previous is None:
            os.environ.pop(env.AGENTLEDGER_API_KEY, None)
        else:
            os.environ[env.AGENTLEDGER_API_KEY] = previous


if __name__ == "__main__":
    sys.exit(main())
