"""AGENTLEDGER_CLUSTER and AGENTLEDGER_SHARD_KEY become the layout the store applies."""

from __future__ import annotations

import pytest

from agentledger.collector.settings import CollectorSettings, SettingsError
from agentledger.schemas.cluster import ClusterLayout


def test_no_cluster_means_a_single_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTLEDGER_CLUSTER", raising=False)
    assert CollectorSettings().cluster_layout() is None


def test_cluster_and_shard_keys_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTLEDGER_CLUSTER", "agentledger")
    monkeypatch.setenv(
        "AGENTLEDGER_SHARD_KEY", "cityHash64(project); spans=cityHash64(project, trace_id)"
    )
    assert CollectorSettings().cluster_layout() == ClusterLayout(
        "agentledger",
        shard_key="cityHash64(project)",
        shard_keys={"spans": "cityHash64(project, trace_id)"},
    )


def test_an_invalid_cluster_name_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="cluster name 'a b' is invalid"):
        CollectorSettings(cluster="a b").cluster_layout()
