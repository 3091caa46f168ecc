"""The Kubernetes manifests in deploy/ render, and the rendered objects run closeloop correctly.

Rendering needs kubectl (its built-in kustomize; no cluster is contacted).
"""

from __future__ import annotations

import fnmatch
import importlib
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from closeloop.stack import SERVICE_PORTS as SERVICES
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZATIONS = ("deploy/base", "deploy/overlays/example", "deploy/overlays/full")
SHARED_ENV = {str(field.validation_alias.choices[0]) for field in ServiceSettings.model_fields.values()}
# Services deployed in two halves (CLOSELOOP_ROLE): closeloop-<service> serves the API (`--role api`)
# behind the Service, closeloop-<service>-worker does the background work (`--role worker`). The
# others run both in one process (the default role, `all`).
SPLIT = ("trigger",)


def deployment_args() -> dict[str, tuple[str, list[str]]]:
    """Return each Deployment's name, with the service it runs and its container's args."""
    expected: dict[str, tuple[str, list[str]]] = {}
    for service in SERVICES:
        if service in SPLIT:
            expected[f"closeloop-{service}"] = (service, ["serve", service, "--role", "api"])
            expected[f"closeloop-{service}-worker"] = (service, ["serve", service, "--role", "worker"])
        else:
            expected[f"closeloop-{service}"] = (service, ["serve", service])
    return expected


DEPLOYMENTS = deployment_args()


def render(path: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "kubectl is not installed: it renders deploy/ with its built-in kustomize. "
            "Install it (Debian/Ubuntu: `apt-get install -y kubectl`).",
            pytrace=False,
        )
    result = subprocess.run(
        [kubectl, "kustomize", str(ROOT / path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=KUSTOMIZATIONS)
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


@pytest.fixture(scope="module")
def overlay() -> list[dict[str, Any]]:
    return render("deploy/overlays/example")


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def main_container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod_spec(deployment)["containers"]
    return container


def config_map_name(objects: list[dict[str, Any]]) -> str:
    (name,) = [n for n in of_kind(objects, "ConfigMap") if n.startswith("closeloop-config")]
    return name


def selects(selector: dict[str, str], deployment: dict[str, Any]) -> bool:
    """Whether a Service's selector (or a PodDisruptionBudget's matchLabels) selects the Deployment's pods."""
    return selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_every_service_has_a_deployment_that_serves_it(objects: list[dict[str, Any]]) -> None:
    assert set(SPLIT) <= set(SERVICES)
    deployments = of_kind(objects, "Deployment")
    assert set(deployments) == set(DEPLOYMENTS)
    for service in SERVICES:
        assert f"closeloop-{service}" in deployments, service
    for name, (_, args) in DEPLOYMENTS.items():
        container = main_container(deployments[name])
        assert container.get("command") is None, "the image's ENTRYPOINT (closeloop) must stay"
        assert container["args"] == args, name
        assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in container["ports"], name
        assert {"name": "PORT", "value": "8000"} in container["env"], name


def test_probes_use_healthz_for_liveness_and_readyz_for_readiness(objects: list[dict[str, Any]]) -> None:
    for name, deployment in of_kind(objects, "Deployment").items():
        container = main_container(deployment)
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, name
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, name
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz", name
        startup = container["startupProbe"]
        # Start-up retries the broker for up to 60 s before the process listens.
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 60, name


def test_every_service_has_a_service_selecting_exactly_its_pods(objects: list[dict[str, Any]]) -> None:
    deployments = of_kind(objects, "Deployment")
    services = of_kind(objects, "Service")
    for service in SERVICES:
        svc = services[f"closeloop-{service}"]
        assert svc["spec"]["ports"] == [
            {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
        ]
        selected = [name for name, d in deployments.items() if selects(svc["spec"]["selector"], d)]
        assert selected == [f"closeloop-{service}"]


def traffic_services(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Services that carry requests: not the observability component's headless ``closeloop-metrics``,
    which only lets the ServiceMonitor find every pod."""
    return [s for n, s in of_kind(objects, "Service").items() if n != "closeloop-metrics"]


def test_trigger_api_is_the_only_trigger_deployment_behind_a_service(objects: list[dict[str, Any]]) -> None:
    deployments = of_kind(objects, "Deployment")
    api = deployments["closeloop-trigger"]
    assert main_container(api)["args"] == ["serve", "trigger", "--role", "api"]
    trigger = {
        name: d for name, d in deployments.items() if main_container(d)["args"][:2] == ["serve", "trigger"]
    }
    assert set(trigger) == {"closeloop-trigger", "closeloop-trigger-worker"}
    selected = {
        name
        for svc in traffic_services(objects)
        for name, d in trigger.items()
        if selects(svc["spec"]["selector"], d)
    }
    assert selected == {"closeloop-trigger"}


def test_trigger_worker_runs_the_background_work_behind_no_service(objects: list[dict[str, Any]]) -> None:
    deployments = of_kind(objects, "Deployment")
    worker = deployments["closeloop-trigger-worker"]
    container = main_container(worker)
    assert container["args"] == ["serve", "trigger", "--role", "worker"]
    labels = worker["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "closeloop"
    assert labels["app.kubernetes.io/component"] == "trigger-worker"
    assert [s for s in traffic_services(objects) if selects(s["spec"]["selector"], worker)] == []
    # Its port serves /healthz, /readyz and /metrics: the same probes and resources as every service.
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    # Both halves read one configuration.
    api = main_container(deployments["closeloop-trigger"])
    for key in ("image", "env", "envFrom", "ports", "securityContext"):
        assert container[key] == api[key], key


def test_every_deployment_has_a_disruption_budget_of_its_own(objects: list[dict[str, Any]]) -> None:
    deployments = of_kind(objects, "Deployment")
    budgets = of_kind(objects, "PodDisruptionBudget")
    for name, deployment in deployments.items():
        covering = [
            b for b, pdb in budgets.items() if selects(pdb["spec"]["selector"]["matchLabels"], deployment)
        ]
        assert covering == [name], name
    for name, pdb in budgets.items():
        assert pdb["spec"].get("maxUnavailable") == 1, "a single replica must still be evictable"
        assert [
            d for d, dep in deployments.items() if selects(pdb["spec"]["selector"]["matchLabels"], dep)
        ] == [name]


def test_deployment_selectors_match_their_pod_labels(objects: list[dict[str, Any]]) -> None:
    for name, deployment in of_kind(objects, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        assert labels["app.kubernetes.io/part-of"] == "closeloop"


def workloads(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every Deployment's and the migration Job's pod spec."""
    return [(o["metadata"]["name"], pod_spec(o)) for o in objects if o["kind"] in ("Deployment", "Job")]


def test_no_container_lacks_resource_requests_and_limits(objects: list[dict[str, Any]]) -> None:
    for name, spec in workloads(objects):
        for container in spec.get("initContainers", []) + spec["containers"]:
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), (
                    f"{name}/{container['name']}: {kind}"
                )


def test_pods_run_as_non_root_on_a_read_only_root_filesystem(objects: list[dict[str, Any]]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    image_uid = int(re.search(r"^USER (\d+)", dockerfile, re.MULTILINE).group(1))  # type: ignore[union-attr]
    for name, spec in workloads(objects):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == image_uid, name
        assert spec["automountServiceAccountToken"] is False, name
        # Service links would inject CLOSELOOP_<SERVICE>_PORT=tcp://… into the settings prefix.
        assert spec["enableServiceLinks"] is False, name
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], name


def test_configuration_comes_from_the_config_map_and_the_secret(objects: list[dict[str, Any]]) -> None:
    config = config_map_name(objects)
    for name, spec in workloads(objects):
        for container in spec.get("initContainers", []) + spec["containers"]:
            sources = container["envFrom"]
            assert {"configMapRef": {"name": config}} in sources, name
            assert {"secretRef": {"name": "closeloop-secrets"}} in sources, name


def test_config_map_holds_only_settings_closeloop_reads(objects: list[dict[str, Any]]) -> None:
    data = of_kind(objects, "ConfigMap")[config_map_name(objects)]["data"]
    assert data["KAFKA_BOOTSTRAP_SERVERS"]
    assert set(data) <= SHARED_ENV, f"unknown settings: {set(data) - SHARED_ENV}"
    assert not {"DATABASE_URL", "CLOSELOOP_SECRET_KEY"} & set(data), "secrets belong in closeloop-secrets"


def service_env_names(service: str) -> set[str]:
    """Return the CLOSELOOP_<SERVICE>_… variables the service's settings class reads."""
    module = importlib.import_module(f"services.{service}.settings")
    (cls,) = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, ServiceSettings) and v is not ServiceSettings
    ]
    prefix = cls.model_config["env_prefix"]
    return {
        (prefix + name).upper() for name, field in cls.model_fields.items() if field.validation_alias is None
    }


def test_per_service_env_is_read_by_that_service(objects: list[dict[str, Any]]) -> None:
    deployments = of_kind(objects, "Deployment")
    for name, (service, _) in DEPLOYMENTS.items():
        # Besides its own: PORT and shared settings set per pod (the static-membership id from the
        # pod's name; the autoscaling component's CLOSELOOP_CONSUMER_REPLICAS).
        names = {v["name"] for v in main_container(deployments[name])["env"]} - {"PORT"} - SHARED_ENV
        assert names <= service_env_names(service), (
            f"{name}: {service} does not read {names - service_env_names(service)}"
        )
    dispatch = {v["name"] for v in main_container(deployments["closeloop-dispatch"])["env"]}
    assert {"CLOSELOOP_DISPATCH_SURVEY_BASE_URL", "CLOSELOOP_DISPATCH_SMTP_HOST"} <= dispatch


def test_every_pod_joins_its_consumer_groups_under_its_own_name(objects: list[dict[str, Any]]) -> None:
    for name, deployment in of_kind(objects, "Deployment").items():
        env = {v["name"]: v for v in main_container(deployment)["env"]}
        assert env["KAFKA_GROUP_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, (
            name
        )


def test_no_secret_is_rendered(objects: list[dict[str, Any]]) -> None:
    assert of_kind(objects, "Secret") == {}, "closeloop-secrets is created outside git"


def test_secret_example_has_the_required_keys() -> None:
    example = yaml.safe_load((ROOT / "deploy" / "base" / "secret.example.yaml").read_text())
    assert example["metadata"]["name"] == "closeloop-secrets"
    assert {"DATABASE_URL", "CLOSELOOP_SECRET_KEY"} <= set(example["stringData"])
    assert all("REPLACE-ME" in value for value in example["stringData"].values())


def test_metrics_are_scraped_and_shutdown_is_graceful(objects: list[dict[str, Any]]) -> None:
    for name, deployment in of_kind(objects, "Deployment").items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/path"] == "/metrics", name
        assert annotations["prometheus.io/port"] == "8000", name
        # uvicorn drains for up to 20 s after a 5 s preStop pause.
        assert pod_spec(deployment)["terminationGracePeriodSeconds"] > 25, name


def test_the_migration_job_migrates_then_creates_topics(objects: list[dict[str, Any]]) -> None:
    job = of_kind(objects, "Job")["closeloop-migrate"]
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never"
    (migrate,) = spec["initContainers"]
    (topics,) = spec["containers"]
    assert migrate["args"] == ["migrate"]
    assert topics["args"][0] == "topics"
    assert "--partitions" in topics["args"] and "--replication" in topics["args"]
    images = {
        c["image"]
        for o in objects
        if o["kind"] in ("Deployment", "Job")
        for c in pod_spec(o).get("initContainers", []) + pod_spec(o)["containers"]
    }
    assert len(images) == 1, f"one image for everything, got {images}"


def test_overlay_sets_namespace_image_tag_replicas_and_public_urls(overlay: list[dict[str, Any]]) -> None:
    settings = yaml.safe_load((ROOT / "deploy" / "overlays" / "example" / "kustomization.yaml").read_text())
    (image,) = settings["images"]
    replicas = {r["name"]: r["count"] for r in settings["replicas"]}
    deployments = of_kind(overlay, "Deployment")
    for obj in overlay:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "closeloop", obj["metadata"]["name"]
    for name, deployment in deployments.items():
        assert main_container(deployment)["image"] == f"{image['name']}:{image['newTag']}"
        assert deployment["spec"]["replicas"] == replicas[name]
    env = {v["name"]: v.get("value") for d in deployments.values() for v in main_container(d)["env"]}
    for var in (
        "CLOSELOOP_TRIGGER_PUBLIC_URL",
        "CLOSELOOP_RESPONSES_PUBLIC_URL",
        "CLOSELOOP_DISPATCH_SURVEY_BASE_URL",
        "CLOSELOOP_CONSOLE_PUBLIC_URL",
    ):
        assert env[var].startswith("https://") and ".invalid" not in env[var], var
    assert env["CLOSELOOP_DISPATCH_SURVEY_BASE_URL"] == env["CLOSELOOP_RESPONSES_PUBLIC_URL"]


def test_ingress_routes_to_rendered_services(overlay: list[dict[str, Any]]) -> None:
    services = of_kind(overlay, "Service")
    for ingress in of_kind(overlay, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["name"] in services


def test_the_prepare_step_selects_everything_the_job_needs(overlay: list[dict[str, Any]]) -> None:
    """deploy/README.md applies `-l 'app.kubernetes.io/component in (config,migration)'` before the rest."""
    selected = {
        (o["kind"], o["metadata"]["name"])
        for o in overlay
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") in ("config", "migration")
    }
    assert selected == {("ConfigMap", config_map_name(overlay)), ("Job", "closeloop-migrate")}
    job = pod_spec(of_kind(overlay, "Job")["closeloop-migrate"])
    assert "serviceAccountName" not in job, (
        "the Job would wait for a ServiceAccount the prepare step does not apply"
    )
    assert "closeloop-secrets" in str(job), "the Job reads DATABASE_URL from the Secret created in step 1"


def test_dockerfile_runs_closeloop_as_non_root_on_port_8000() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["closeloop"\]$', dockerfile, re.MULTILINE)
    assert re.search(r'^CMD \["serve", "trigger"\]$', dockerfile, re.MULTILINE)
    assert re.search(r"^EXPOSE 8000$", dockerfile, re.MULTILINE)
    assert re.search(r"^USER [1-9]\d*", dockerfile, re.MULTILINE), "a numeric, non-root user"
    assert "pip install --no-cache-dir ." in dockerfile and "[dev]" not in dockerfile


def test_every_data_file_of_the_packages_is_installed_by_pip() -> None:
    """The image has only what `pip install .` installs: non-Python files need a package-data pattern."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["*"]
    for package in ("closeloop", "shared", "services"):
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".py", ".pyc"):
                assert any(fnmatch.fnmatch(path.name, p) for p in patterns), (
                    f"{path.relative_to(ROOT)} is not packaged"
                )
