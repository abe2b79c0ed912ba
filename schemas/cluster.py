"""The cluster form of agentledger's DDL, rendered from the same numbered ``.sql`` files.

On a single node the files apply as written. On a ClickHouse cluster every table becomes
two: ``<name>_local``, a ``Replicated*MergeTree`` on each shard, and ``<name>``, a
``Distributed`` table in front of the local ones, so that the queries keep their table
names. Every statement carries ``ON CLUSTER``. Materialized views read and write the local
tables (an insert into a Distributed table reaches each shard as an insert into its local
table, which is what triggers a view); plain views read the Distributed tables.

De-duplication (``ReplacingMergeTree`` read through ``FINAL``) works per shard, so a sharding
key must send every copy of a row to the same shard: it may only use columns of the table's
``ORDER BY`` key. The default is ``cityHash64`` of that key without its last column, e.g.
``cityHash64(project, trace_id)`` for ``spans``, which also keeps a trace on one shard.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from agentledger.schemas.sql import Migration, migrations

#: The ledger of applied migrations and the lock guarding their application.
LEDGER_TABLE: Final = "schema_migrations"
LOCK_TABLE: Final = "schema_migrations_lock"
#: How far the rollups have read the spans and verdicts (see agentledger.collector.rollups):
#: one row per name, the latest wins. Store-wide, so it lives beside the ledger.
WATERMARK_TABLE: Final = "rollup_watermark"

#: Keeper path of a replicated local table: one replica set per shard.
DEFAULT_REPLICA_PATH: Final = "/clickhouse/tables/{shard}/{database}/{table}"
#: Keeper path of the ledger and the lock: one replica set over the whole cluster, so that
#: every node sees every applied migration.
DEFAULT_GLOBAL_REPLICA_PATH: Final = "/clickhouse/tables/all/{database}/{table}"
DEFAULT_REPLICA_NAME: Final = "{replica}"
LOCAL_SUFFIX: Final = "_local"
#: The Distributed engine's database argument unless one is named.
DEFAULT_DATABASE_ARGUMENT: Final = "currentDatabase()"

_NAME: Final = r"`?(?P<name>[A-Za-z_][A-Za-z0-9_]*)`?"
_CREATE: Final = re.compile(
    r"^\s*CREATE\s+(?P<orr>OR\s+REPLACE\s+)?(?P<what>TABLE|VIEW|MATERIALIZED\s+VIEW)\s+"
    r"(?P<ine>IF\s+NOT\s+EXISTS\s+)?" + _NAME + r"(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_ALTER: Final = re.compile(
    r"^\s*ALTER\s+TABLE\s+" + _NAME + r"(?P<rest>.*)$", re.IGNORECASE | re.DOTALL
)
_DROP: Final = re.compile(
    r"^\s*DROP\s+(?P<what>TABLE|VIEW)\s+(?P<ie>IF\s+EXISTS\s+)?" + _NAME + r"(?P<rest>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_ENGINE: Final = re.compile(r"\bENGINE\s*=\s*(?P<engine>[A-Za-z]*MergeTree)\b", re.IGNORECASE)
_ANY_ENGINE: Final = re.compile(r"\bENGINE\s*=\s*(?P<engine>[A-Za-z0-9_]+)", re.IGNORECASE)
_ORDER_BY: Final = re.compile(r"\bORDER\s+BY\s+", re.IGNORECASE)
_TO_TARGET: Final = re.compile(r"^\s*TO\s+" + _NAME, re.IGNORECASE)
_TABLE_REF: Final = re.compile(r"\b(?P<kw>FROM|JOIN)\s+" + _NAME, re.IGNORECASE)
_AS_SELECT: Final = re.compile(r"\bAS\s*\(?\s*(?:WITH|SELECT)\b", re.IGNORECASE)
_COLUMN_ALTER: Final = re.compile(
    r"^\s*(ADD|DROP|MODIFY|RENAME|COMMENT|CLEAR)\s+COLUMN\b", re.IGNORECASE
)
_CLUSTER_NAME: Final = re.compile(r"^[A-Za-z0-9_.{}-]+$")
_IDENTIFIER: Final = re.compile(r"(?<![\w.'])([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()")
_SQL_WORDS: Final = frozenset({"and", "or", "not", "null", "true", "false", "as", "in", "is"})


class ClusterSchemaError(ValueError):
    """A statement or a setting has no cluster form."""


@dataclass(frozen=True)
class ClusterLayout:
    """Where and how the cluster form places the tables.

    Args:
        cluster: Name of the cluster in the servers' ``remote_servers``, or a macro such as
            ``{cluster}``.
        shard_key: Sharding key of every Distributed table, unless ``shard_keys`` names one
            for that table; None means the default per table (see the module docstring).
        shard_keys: Sharding key by table name.
        database: Database argument of the Distributed engine, an SQL expression; see
            :meth:`in_database`.
    """

    cluster: str
    shard_key: str | None = None
    shard_keys: Mapping[str, str] = field(default_factory=dict)
    database: str = DEFAULT_DATABASE_ARGUMENT
    replica_path: str = DEFAULT_REPLICA_PATH
    global_replica_path: str = DEFAULT_GLOBAL_REPLICA_PATH
    replica_name: str = DEFAULT_REPLICA_NAME

    def __post_init__(self) -> None:
        if not _CLUSTER_NAME.match(self.cluster):
            raise ClusterSchemaError(
                f"cluster name {self.cluster!r} is invalid: use letters, digits, '_', '-', '.' "
                "or a macro such as '{cluster}'"
            )
        for key in [self.shard_key, *self.shard_keys.values()]:
            if key is not None and (not key.strip() or ";" in key):
                raise ClusterSchemaError(f"shard key {key!r} is not a single expression")

    def on_cluster(self) -> str:
        return f"ON CLUSTER {_quote(self.cluster)}"

    def in_database(self, database: str) -> ClusterLayout:
        """This layout with Distributed tables pointing at ``database`` by name.

        ``currentDatabase()`` is evaluated where a statement runs, and ``ON CLUSTER`` runs
        it on every host, whose current database need not be the initiator's.
        """
        return replace(self, database=_quote(database))


def parse_shard_keys(values: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """Split ``--shard-key`` values into a key for all tables and keys by table.

    ``TABLE=EXPR`` sets the key of one table; a value without that prefix sets the key of
    every other table.
    """
    default: str | None = None
    by_table: dict[str, str] = {}
    for value in values:
        match = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)(.*)$", value, re.DOTALL)
        if match:
            by_table[match.group(1)] = match.group(2).strip()
        else:
            default = value.strip()
    return default, by_table


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _local(name: str) -> str:
    return name + LOCAL_SUFFIX


def _matching_paren(text: str, start: int) -> int:
    """Index of the ``)`` closing the ``(`` at ``start``, skipping quoted text."""
    depth = 0
    quote = ""
    index = start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'`\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ClusterSchemaError(f"unbalanced parentheses after {text[start : start + 40]!r}")


def _replicated_engine(rest: str, path: str, layout: ClusterLayout, name: str) -> str:
    """``rest`` with its ``*MergeTree`` engine made ``Replicated*MergeTree``."""
    match = _ENGINE.search(rest)
    if match is None:
        other = _ANY_ENGINE.search(rest)
        found = other.group("engine") if other else "none"
        raise ClusterSchemaError(
            f"table {name!r} has engine {found!r}: the cluster form needs a *MergeTree engine"
        )
    engine = match.group("engine")
    if engine.lower().startswith("replicated"):
        return rest
    replica_args = f"{_quote(path)}, {_quote(layout.replica_name)}"
    after = match.end()
    opening = after + len(rest[after:]) - len(rest[after:].lstrip())
    if opening < len(rest) and rest[opening] == "(":
        closing = _matching_paren(rest, opening)
        inner = rest[opening + 1 : closing].strip()
        args = f"{replica_args}, {inner}" if inner else replica_args
        return f"{rest[: match.start('engine')]}Replicated{engine}({args}){rest[closing + 1 :]}"
    return f"{rest[: match.start('engine')]}Replicated{engine}({replica_args}){rest[after:]}"


def order_key(statement: str) -> list[str]:
    """The column names of a CREATE TABLE statement's ``ORDER BY`` key, in order."""
    match = _ORDER_BY.search(statement)
    if match is None:
        return []
    tail = statement[match.end() :].lstrip()
    if tail.startswith("("):
        inner = tail[1 : _matching_paren(tail, 0)]
    else:
        inner = re.split(r"\s+(?:PRIMARY|SAMPLE|TTL|SETTINGS|PARTITION)\b|$", tail, 1)[0]
    return [part.strip().strip("`") for part in _split_top_level(inner) if part.strip()]


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += (char == "(") - (char == ")")
        current.append(char)
    parts.append("".join(current))
    return parts


def default_shard_key(key_columns: Sequence[str]) -> str:
    """``cityHash64`` of the de-duplication key without its last column (all of a 1-column key)."""
    columns = list(key_columns[:-1] if len(key_columns) > 1 else key_columns)
    if not columns:
        raise ClusterSchemaError("a table without an ORDER BY key has no default shard key")
    return f"cityHash64({', '.join(columns)})"


def check_shard_key(table: str, expression: str, key_columns: Sequence[str]) -> None:
    """Refuse a sharding key that could send copies of one row to different shards.

    Every column it reads must belong to the table's de-duplication key; a key without a
    column (``rand()``) is refused too.
    """
    allowed = {column.lower() for column in key_columns}
    text = re.sub(r"'(?:\\.|[^'\\])*'", "''", expression)
    used = {word for word in _IDENTIFIER.findall(text) if word.lower() not in _SQL_WORDS}
    outside = sorted(word for word in used if word.lower() not in allowed)
    if outside or not used:
        raise ClusterSchemaError(
            f"shard key {expression!r} of table {table!r} must read only columns of its "
            f"de-duplication key {tuple(key_columns)!r} (found {sorted(used)!r}): otherwise "
            "re-delivered rows may land on different shards and count twice"
        )


class ClusterRenderer:
    """Renders statements in the cluster form; knows which names are sharded tables.

    Args:
        layout: Cluster name, sharding keys and replica paths.
        sharded: Names of the tables (and views with an inner engine) that get a ``_local``
            table and a Distributed one; by default every one created by a migration.
    """

    def __init__(self, layout: ClusterLayout, sharded: set[str] | None = None) -> None:
        self.layout = layout
        self.sharded = set(sharded) if sharded is not None else sharded_names(migrations())

    def render(self, statement: str) -> list[str]:
        """The cluster form of one statement: one or more statements."""
        create = _CREATE.match(statement)
        if create:
            what = " ".join(create.group("what").upper().split())
            if what == "TABLE":
                return self._table(create)
            if what == "VIEW":
                # A plain view reads the Distributed tables: only ON CLUSTER is added.
                rest = create.group("rest").lstrip()
                return [self._head(create, create.group("name")) + " " + rest]
            return self._materialized_view(create)
        alter = _ALTER.match(statement)
        if alter:
            return self._alter(alter)
        drop = _DROP.match(statement)
        if drop:
            return self._drop(drop)
        head = " ".join(statement.split()[:3])
        raise ClusterSchemaError(f"statement {head!r}... has no cluster form")

    def _head(self, create: re.Match[str], name: str) -> str:
        what = " ".join(create.group("what").upper().split())
        ine = "IF NOT EXISTS " if create.group("ine") else ""
        orr = "OR REPLACE " if create.group("orr") else ""
        return f"CREATE {orr}{what} {ine}{name} {self.layout.on_cluster()}"

    def _table(self, create: re.Match[str]) -> list[str]:
        name, rest = create.group("name"), create.group("rest")
        if _AS_SELECT.search(rest) and not rest.lstrip().startswith("("):
            raise ClusterSchemaError(f"table {name!r} is created AS SELECT: no cluster form")
        if name not in self.sharded:
            path = self.layout.global_replica_path
            return [self._head(create, name) + _replicated_engine(rest, path, self.layout, name)]
        local = self._head(create, _local(name)) + _replicated_engine(
            rest, self.layout.replica_path, self.layout, name
        )
        return [local, self._distributed(create, name, order_key(create.group(0)))]

    def _distributed(self, create: re.Match[str], name: str, key_columns: list[str]) -> str:
        layout = self.layout
        expression = layout.shard_keys.get(name) or layout.shard_key
        if expression is None:
            expression = default_shard_key(key_columns)
        check_shard_key(name, expression, key_columns)
        engine = (
            f"Distributed({_quote(layout.cluster)}, {layout.database}, "
            f"{_quote(_local(name))}, {expression})"
        )
        ine = "IF NOT EXISTS " if create.group("ine") else ""
        head = f"CREATE TABLE {ine}{name} {layout.on_cluster()}"
        return f"{head} AS {_local(name)} ENGINE = {engine}"

    def _materialized_view(self, create: re.Match[str]) -> list[str]:
        name, rest = create.group("name"), create.group("rest")
        query_at = _AS_SELECT.search(rest)
        if query_at is None:
            raise ClusterSchemaError(f"materialized view {name!r} has no AS SELECT")
        options, query = rest[: query_at.start()], rest[query_at.start() :]
        # The view fires on inserts into a shard's local table and writes the local target.
        query = _TABLE_REF.sub(self._local_ref, query)
        target = _TO_TARGET.match(options)
        if target:
            target_name = target.group("name")
            if target_name in self.sharded:
                options = f" TO {_local(target_name)}" + options[target.end() :]
            return [self._head(create, name) + " " + options.strip() + " " + query]
        # An inner engine: the view is a shard's local table, with a Distributed one in front
        # (or, when not sharded, one replica set over the cluster). The Keeper path names the
        # view: {table} would name its hidden inner table.
        if name not in self.sharded:
            path = self.layout.global_replica_path.replace("{table}", name)
            options = _replicated_engine(options, path, self.layout, name)
            return [self._head(create, name) + " " + options.strip() + " " + query]
        path = self.layout.replica_path.replace("{table}", _local(name))
        options = _replicated_engine(options, path, self.layout, name)
        local = self._head(create, _local(name)) + " " + options.strip() + " " + query
        return [local, self._distributed(create, name, order_key(options))]

    def _local_ref(self, match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in self.sharded:
            return match.group(0)
        return f"{match.group('kw')} {_local(name)}"

    def _alter(self, alter: re.Match[str]) -> list[str]:
        name, rest = alter.group("name"), alter.group("rest")
        on = self.layout.on_cluster()
        if name not in self.sharded:
            return [f"ALTER TABLE {name} {on}{rest}"]
        statements = [f"ALTER TABLE {_local(name)} {on}{rest}"]
        # A Distributed table mirrors the columns of its local tables, and only those.
        actions = _split_top_level(rest)
        if all(_COLUMN_ALTER.match(action) for action in actions):
            statements.append(f"ALTER TABLE {name} {on}{rest}")
        return statements

    def _drop(self, drop: re.Match[str]) -> list[str]:
        what, name, rest = drop.group("what").upper(), drop.group("name"), drop.group("rest")
        ie = "IF EXISTS " if drop.group("ie") else ""
        on = self.layout.on_cluster()
        names = [name, _local(name)] if name in self.sharded else [name]
        return [f"DROP {what} {ie}{each} {on}{rest}".rstrip() for each in names]


def sharded_names(found: Sequence[Migration]) -> set[str]:
    """Tables, and materialized views with an inner engine, created by the migrations."""
    names: set[str] = set()
    for migration in found:
        for statement in migration.statements:
            create = _CREATE.match(statement)
            if create is None:
                continue
            what = " ".join(create.group("what").upper().split())
            if what == "TABLE" or (
                what == "MATERIALIZED VIEW" and not _TO_TARGET.match(create.group("rest"))
            ):
                names.add(create.group("name"))
    return names


def ledger_statements(layout: ClusterLayout | None = None) -> list[str]:
    """DDL of the migrations ledger, its lock and the rollup watermark, in either form."""
    statements = [
        (
            f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} "
            "(version UInt32, name String, applied_at DateTime64(9, 'UTC') DEFAULT now64(9)) "
            "ENGINE = ReplacingMergeTree ORDER BY version"
        ),
        # Claims of the right to apply migrations; see agentledger.collector.store.
        (
            f"CREATE TABLE IF NOT EXISTS {LOCK_TABLE} "
            "(name String, owner String, released Bool DEFAULT false, "
            "at DateTime64(9, 'UTC') DEFAULT now64(9)) "
            "ENGINE = MergeTree ORDER BY (name, at) TTL toDateTime(at) + INTERVAL 7 DAY"
        ),
        (
            f"CREATE TABLE IF NOT EXISTS {WATERMARK_TABLE} "
            "(name String, through DateTime64(9, 'UTC'), "
            "at DateTime64(9, 'UTC') DEFAULT now64(9)) "
            "ENGINE = ReplacingMergeTree(at) ORDER BY name"
        ),
    ]
    if layout is None:
        return statements
    renderer = ClusterRenderer(layout, sharded=set())
    return [rendered for statement in statements for rendered in renderer.render(statement)]


def migration_statements(
    migration: Migration, layout: ClusterLayout | None, renderer: ClusterRenderer | None = None
) -> list[str]:
    """The statements of one migration in the single-node or the cluster form."""
    if layout is None:
        return list(migration.statements)
    renderer = renderer or ClusterRenderer(layout)
    return [each for statement in migration.statements for each in renderer.render(statement)]


def schema_ddl(layout: ClusterLayout | None = None) -> str:
    """Every statement agentledger applies, in order, as one script for an operator."""
    found = migrations()
    renderer = ClusterRenderer(layout, sharded_names(found)) if layout else None
    form = f"cluster {layout.cluster!r}" if layout else "single node"
    parts = [f"-- agentledger schema, {form}: the ledger, then each migration in order."]
    parts += [statement + ";" for statement in ledger_statements(layout)]
    for migration in found:
        parts.append(f"\n-- {migration.name}")
        parts += [s + ";" for s in migration_statements(migration, layout, renderer)]
        parts.append(
            f"INSERT INTO {LEDGER_TABLE} (version, name) "
            f"VALUES ({migration.version}, {_quote(migration.name)});"
        )
    return "\n".join(parts) + "\n"
