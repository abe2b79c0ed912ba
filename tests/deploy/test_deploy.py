"""deploy/: every file parses and checks against the schema of its tool, where one is here.

What runs: YAML and JSON parsing, the compose file against the Compose specification
(compose-spec), the Kubernetes manifests against the Kubernetes schemas (kubernetes-validate,
strict), the keys and alert files through agentledger's own loaders, the ClickHouse and
Keeper XML, the OpenTelemetry Collector wiring, and every Grafana query executed on a chDB
store that holds the views. What cannot run here (no Docker engine, no cluster) is listed in
deploy/README.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from compose_spec import PyCompose

from agentledger.collector.alerts import load_config
from agentledger.collector.auth import KeyRing
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.30.0"
YAML_FILES = sorted(DEPLOY.rglob("*.yaml"))
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}")


def _docs(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc is not None]


def _env_example() -> dict[str, str]:
    lines = (DEPLOY / "env.example").read_text("utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _interpolate(text: str, env: dict[str, str]) -> str:
    """What ``docker compose`` does to the file before reading it."""

    def value(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        if name in env:
            return env[name]
        if operator == ":-":
            return argument
        raise AssertionError(f"${{{name}}} is not set in env.example")

    return _VARIABLE.sub(value, text)


def test_there_is_something_to_check() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in DEPLOY.rglob("*") if p.is_file()}
    assert {
        "Dockerfile",
        "compose.yaml",
        "otel-collector.yaml",
        "grafana/agentledger.json",
        "README.md",
        "kubernetes/kustomization.yaml",
    } <= names
    assert len(MANIFESTS) >= 5


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_every_yaml_file_parses(path: Path) -> None:
    assert _docs(path)


# --- compose ---------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    text = _interpolate((DEPLOY / "compose.yaml").read_text("utf-8"), _env_example())
    return PyCompose.from_yaml(text).to_dict()


def test_compose_file_follows_the_compose_specification() -> None:
    compose = _compose()
    assert set(compose["services"]) == {"clickhouse", "agentledger"}


def test_compose_checks_health_and_waits_for_clickhouse() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
    assert services["agentledger"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"


def test_compose_keeps_data_and_spool_on_volumes() -> None:
    compose = _compose()
    declared = set(compose["volumes"])
    used = {
        str(mount).split(":")[0] if isinstance(mount, str) else mount["source"]
        for service in compose["services"].values()
        for mount in service.get("volumes", [])
    }
    assert {"clickhouse-data", "agentledger-spool"} <= used <= declared


def test_compose_keys_come_from_the_environment_and_load(tmp_path: Path) -> None:
    compose = _compose()
    environment = compose["services"]["agentledger"]["environment"]
    assert environment["AGENTLEDGER_STORE"].startswith("http://agentledger:")
    keys_file = tmp_path / "keys.toml"
    keys_file.write_text(compose["configs"]["keys"]["content"], "utf-8")
    keys = KeyRing.from_file(keys_file)
    example = _env_example()
    assert len(keys) == 3
    roles = {name: keys.lookup(example[f"AGENTLEDGER_{name}_KEY"]) for name in ("INGEST", "READ")}
    assert {name: p.role if p else None for name, p in roles.items()} == {
        "INGEST": "ingest",
        "READ": "read",
    }
    # No secret is written into the file itself.
    raw = (DEPLOY / "compose.yaml").read_text("utf-8")
    assert example["CLICKHOUSE_PASSWORD"] not in raw


def test_compose_without_a_required_key_is_refused() -> None:
    env = _env_example()
    del env["AGENTLEDGER_INGEST_KEY"]
    with pytest.raises(AssertionError, match="AGENTLEDGER_INGEST_KEY"):
        _interpolate((DEPLOY / "compose.yaml").read_text("utf-8"), env)


# --- Dockerfile ------------------------------------------------------------------------


def test_dockerfile_copies_every_package_directory() -> None:
    text = (DEPLOY / "Dockerfile").read_text("utf-8")
    copied = {
        line.split()[1]
        for line in text.splitlines()
        if line.startswith("COPY ") and "--from" not in line
    }
    pyproject = (ROOT / "pyproject.toml").read_text("utf-8")
    package_dirs = set(re.findall(r'"agentledger[\w.]*" = "(\w+)"', pyproject))
    assert package_dirs and package_dirs <= copied
    for path in copied:
        assert (ROOT / path).exists(), path
    assert "HEALTHCHECK" in text and "EXPOSE 4318" in text and "USER agentledger" in text
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text("utf-8")
    for path in package_dirs:
        assert f"!{path}/" in ignore


# --- Kubernetes ------------------------------------------------------------------------


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_validate_against_the_kubernetes_schemas(path: Path) -> None:
    for doc in _docs(path):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def _all_resources() -> list[dict[str, Any]]:
    return [doc for path in MANIFESTS for doc in _docs(path)]


def _find(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in _all_resources() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    (kustomization,) = _docs(K8S / "kustomization.yaml")
    expected = {p.name for p in MANIFESTS} - {"secret.example.yaml"}
    assert set(kustomization["resources"]) == expected


def test_every_referenced_secret_key_and_config_map_exists() -> None:
    secret = _find("Secret", "agentledger")
    config_maps = {d["metadata"]["name"]: d for d in _all_resources() if d["kind"] == "ConfigMap"}
    text = json.dumps(_all_resources())
    for key in re.findall(r'"secretKeyRef": \{"name": "agentledger", "key": "([\w.-]+)"\}', text):
        assert key in secret["stringData"], key
    for name in re.findall(r'"configMap": \{"name": "([\w-]+)"', text):
        assert name in config_maps, name


def test_secret_example_keys_and_alert_rules_load(tmp_path: Path) -> None:
    secret = _find("Secret", "agentledger")
    keys_file = tmp_path / "keys.toml"
    keys_file.write_text(secret["stringData"]["keys.toml"], "utf-8")
    keys = KeyRing.from_file(keys_file)
    principal = keys.lookup(secret["stringData"]["ingest-key"])
    assert principal is not None and principal.role == "ingest"
    alerts_file = tmp_path / "alerts.toml"
    alerts_file.write_text(_find("ConfigMap", "agentledger-alerts")["data"]["alerts.toml"])
    assert load_config(alerts_file).rules == []


def _container_env(workload: dict[str, Any]) -> dict[str, str]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "<from secret>") for e in container["env"]}


def test_collectors_use_the_cluster_and_exactly_one_evaluates_alerts() -> None:
    collectors = _find("StatefulSet", "agentledger")
    alerts = _find("Deployment", "agentledger-alerts")
    cluster_xml = ET.fromstring(_find("ConfigMap", "clickhouse-config")["data"]["cluster.xml"])
    (cluster,) = list(cluster_xml.find("remote_servers"))  # type: ignore[arg-type]
    for workload in (collectors, alerts):
        env = _container_env(workload)
        assert env["AGENTLEDGER_CLUSTER"] == cluster.tag == "agentledger"
        assert env["AGENTLEDGER_STORE"].startswith("http://")
    assert _container_env(collectors)["AGENTLEDGER_EVALUATE_ALERTS"] == "false"
    assert _container_env(alerts)["AGENTLEDGER_EVALUATE_ALERTS"] == "true"
    assert alerts["spec"]["replicas"] == 1 and alerts["spec"]["strategy"]["type"] == "Recreate"
    # Each collector has a spool volume of its own.
    (claim,) = collectors["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "spool"


def test_clickhouse_cluster_matches_its_stateful_sets_and_keeper() -> None:
    config = _find("ConfigMap", "clickhouse-config")["data"]
    cluster_xml = ET.fromstring(config["cluster.xml"])
    shards = cluster_xml.findall("remote_servers/agentledger/shard")
    hosts = [[r.findtext("host") for r in shard.findall("replica")] for shard in shards]
    expected = []
    for index in range(len(shards)):
        workload = _find("StatefulSet", f"clickhouse-s{index}")
        assert _container_env(workload)["CH_SHARD"] == str(index)
        service = workload["spec"]["serviceName"]
        expected.append(
            [f"clickhouse-s{index}-{n}.{service}" for n in range(workload["spec"]["replicas"])]
        )
    assert hosts == expected and len(shards) == 2
    keeper = _find("StatefulSet", "keeper")
    keeper_hosts = [n.findtext("host") for n in cluster_xml.findall("zookeeper/node")]
    assert keeper_hosts == [f"keeper-{n}.keeper" for n in range(keeper["spec"]["replicas"])]
    keeper_xml = ET.fromstring(_find("ConfigMap", "keeper-config")["data"]["keeper.xml"])
    assert len(keeper_xml.findall("keeper_server/raft_configuration/server")) == 3
    users = ET.fromstring(config["users.xml"])
    assert users.findtext("profiles/agentledger/distributed_product_mode") == "global"


# --- OpenTelemetry Collector -----------------------------------------------------------


def test_otel_gateway_config_map_is_the_documented_config() -> None:
    embedded = _find("ConfigMap", "otel-gateway")["data"]["config.yaml"]
    assert embedded == (DEPLOY / "otel-collector.yaml").read_text("utf-8")


def test_otel_pipeline_references_only_defined_components() -> None:
    (config,) = _docs(DEPLOY / "otel-collector.yaml")
    service = config["service"]
    assert set(service["extensions"]) <= set(config["extensions"])
    (pipeline,) = service["pipelines"].values()
    for section in ("receivers", "processors", "exporters"):
        assert set(pipeline[section]) <= set(config[section]), section
    exporter = config["exporters"]["otlphttp/agentledger"]
    assert exporter["sending_queue"]["storage"] in config["extensions"]
    # No sampler: sampled-out spans would be spend that nobody sees.
    assert not any("sampl" in name for name in config.get("processors", {}))
    # Every ${env:...} it reads is set on the gateway's container.
    used = set(re.findall(r"\$\{env:(\w+)\}", (DEPLOY / "otel-collector.yaml").read_text()))
    assert used and used <= set(_container_env(_find("StatefulSet", "otel-gateway")))


# --- Grafana ---------------------------------------------------------------------------

_MACROS = [
    (re.compile(r"\$__timeFilter\((\w+)\)"), r"\1 >= now64() - INTERVAL 7 DAY AND \1 <= now64()"),
    (re.compile(r"\$__timeInterval\((\w+)\)"), r"toStartOfInterval(\1, INTERVAL 3600 SECOND)"),
    (re.compile(r"\$\{project:singlequote\}"), "'default'"),
]


def _grafana_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "agentledger.json").read_text("utf-8"))
    queries = [t["rawSql"] for p in dashboard["panels"] for t in p["targets"]]
    queries += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return queries


def test_grafana_queries_run_on_the_views(tmp_path: Path) -> None:
    queries = []
    for query in _grafana_queries():
        for pattern, replacement in _MACROS:
            query = pattern.sub(replacement, query)
        assert "$" not in query, query
        queries.append(query)
    assert len(queries) >= 10
    # A fresh store with every migration, views included; each query must run, not just parse.
    script = (
        "import json, sys\n"
        "from agentledger.collector.store import Store\n"
        "store = Store(sys.argv[1])\n"
        "store.migrate()\n"
        "for query in json.loads(sys.argv[2]):\n"
        "    store.query(query)\n"
        "print('ran', len(json.loads(sys.argv[2])))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "store"), json.dumps(queries)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"ran {len(queries)}" in done.stdout


def test_grafana_panels_have_unique_ids_and_the_clickhouse_data_source() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "agentledger.json").read_text("utf-8"))
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["type"] == "grafana-clickhouse-datasource"
