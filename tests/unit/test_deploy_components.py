"""The opt-in Kustomize components (deploy/components), rendered through deploy/overlays/full with
kubectl's kustomize, checked object by object: autoscalers target what exists and respect the
partition count, network policies let through what the services need, the alerts and the dashboard
query metrics the code exports. (Pod security is checked for every rendering in test_deploy.py.)"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.unit.test_deploy import main_container, of_kind, pod_spec, render, selects

ROOT = Path(__file__).resolve().parents[2]
API = {"closeloop-trigger", "closeloop-responses", "closeloop-console"}
CONSUMERS = {"closeloop-dispatch", "closeloop-scoring", "closeloop-followup", "closeloop-trigger-worker"}
ALERTS = {
    "CloseloopDeadLettersPending",
    "CloseloopConsumerLagGrowing",
    "CloseloopOutboxStuck",
    "CloseloopHttp5xxRate",
    "CloseloopWebhook401Spike",
    "CloseloopSlaBreaches",
}


@pytest.fixture(scope="module")
def full() -> list[dict[str, Any]]:
    return render("deploy/overlays/full")


def partitions(objects: list[dict[str, Any]]) -> int:
    job = of_kind(objects, "Job")["closeloop-migrate"]
    args = pod_spec(job)["containers"][0]["args"]
    return int(args[args.index("--partitions") + 1])


def exported_metrics() -> set[str]:
    """Every series name the code can export (modules that define metrics of their own imported)."""
    for module in (
        "shared.observability",
        "services.followup.handlers.escalate",
        "services.dispatch.sending.sender",
    ):
        importlib.import_module(module)
    names = set()
    for family in REGISTRY.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [""])
        names.update(family.name + suffix for suffix in suffixes)
    return names


def test_api_deployments_scale_on_cpu(full: list[dict[str, Any]]) -> None:
    hpas = of_kind(full, "HorizontalPodAutoscaler")
    deployments = of_kind(full, "Deployment")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()} == API
    for hpa in hpas.values():
        target = deployments[hpa["spec"]["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"], "the autoscaler owns the replica count"
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
        assert main_container(target)["resources"]["requests"]["cpu"], "CPU utilisation needs a request"
        assert 1 < hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_consumers_scale_on_lag_up_to_the_partition_count(full: list[dict[str, Any]]) -> None:
    scaled = of_kind(full, "ScaledObject")
    deployments = of_kind(full, "Deployment")
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled.values()} == CONSUMERS
    assert not API & CONSUMERS, "one autoscaler per Deployment"
    count = partitions(full)
    for name, obj in scaled.items():
        target = deployments[obj["spec"]["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"]
        assert obj["spec"]["maxReplicaCount"] <= count, f"{name}: more replicas than partitions"
        env = {v["name"]: v.get("value") for v in main_container(target)["env"]}
        assert env["CLOSELOOP_CONSUMER_REPLICAS"] == str(obj["spec"]["maxReplicaCount"]), name
        (trigger,) = obj["spec"]["triggers"]
        if trigger["type"] == "kafka":
            component = target["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
            meta = trigger["metadata"]
            assert meta["consumerGroup"] == f"closeloop-{component}"
            assert meta["bootstrapServersFromEnv"] == "KAFKA_BOOTSTRAP_SERVERS"
            assert int(meta["lagThreshold"]) == 100  # documented in docs/operations.md
            assert meta["allowIdleConsumers"] == "false"
        else:
            assert trigger["type"] == "postgresql" and "received_events" in trigger["metadata"]["query"]


def test_network_policies_deny_by_default_and_allow_what_the_services_need(
    full: list[dict[str, Any]],
) -> None:
    policies = of_kind(full, "NetworkPolicy")
    deny = policies["closeloop-default-deny"]["spec"]
    assert (
        set(deny["policyTypes"]) == {"Ingress", "Egress"} and "ingress" not in deny and "egress" not in deny
    )
    for deployment in of_kind(full, "Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert all(selects(p["spec"]["podSelector"]["matchLabels"], deployment) for p in policies.values())
        ports = {p["containerPort"] for p in main_container(deployment)["ports"]}
        assert labels["app.kubernetes.io/name"] == "closeloop"
        (rule,) = policies["closeloop-ingress-http"]["spec"]["ingress"]
        assert {p["port"] for p in rule["ports"]} == ports == {8000}
    egress_ports = {
        (port["protocol"], port["port"])
        for rule in policies["closeloop-egress"]["spec"]["egress"]
        for port in rule["ports"]
    }
    for needed in [
        ("UDP", 53),
        ("TCP", 5432),
        ("TCP", 9092),
        ("TCP", 9093),
        ("TCP", 587),
        ("TCP", 443),
        ("TCP", 8000),
    ]:
        assert needed in egress_ports, needed
    public = [
        r for r in policies["closeloop-egress"]["spec"]["egress"] if "ipBlock" in (r.get("to") or [{}])[0]
    ]
    assert "10.0.0.0/8" in public[0]["to"][0]["ipBlock"]["except"], "private ranges stay closed"


def test_prometheus_scrapes_every_pod(full: list[dict[str, Any]]) -> None:
    service = of_kind(full, "Service")["closeloop-metrics"]
    monitor = of_kind(full, "ServiceMonitor")["closeloop"]
    assert service["spec"]["clusterIP"] == "None"
    assert all(selects(service["spec"]["selector"], d) for d in of_kind(full, "Deployment").values())
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]


def test_alerts_cover_what_operators_asked_for_and_query_exported_metrics(full: list[dict[str, Any]]) -> None:
    (group,) = of_kind(full, "PrometheusRule")["closeloop"]["spec"]["groups"]
    rules = {r["alert"]: r for r in group["rules"]}
    assert set(rules) == ALERTS
    exported = exported_metrics()
    for name, rule in rules.items():
        used = set(re.findall(r"closeloop_[a-z0-9_]+", rule["expr"]))
        assert used and used <= exported, f"{name} queries {used - exported}, which nothing exports"
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
    assert "> 60" in rules["CloseloopOutboxStuck"]["expr"]
    assert rules["CloseloopConsumerLagGrowing"]["for"] == "10m"


def test_the_grafana_dashboard_charts_exported_metrics(full: list[dict[str, Any]]) -> None:
    config = of_kind(full, "ConfigMap")["closeloop-grafana-dashboard"]
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config["data"]["closeloop.json"])
    exported = exported_metrics()
    used = {
        m
        for p in dashboard["panels"]
        for t in p["targets"]
        for m in re.findall(r"closeloop_[a-z0-9_]+", t["expr"])
    }
    assert used <= exported, f"the dashboard charts {used - exported}, which nothing exports"
    for wanted in (
        "closeloop_consumer_lag",
        "closeloop_outbox_oldest_age_seconds",
        "closeloop_dead_letters_pending",
        "closeloop_http_request_duration_seconds_bucket",
        "closeloop_channel_sends_total",
    ):
        assert wanted in used, wanted
