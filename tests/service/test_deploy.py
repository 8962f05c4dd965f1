"""deploy/: the Kubernetes manifests validate against the Kubernetes schema (offline, strict), hold
a configuration the service accepts, and agree with each other and with the Containerfile."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from relay_service.settings import ENVIRONMENT_VARIABLES, Settings

DEPLOY = Path(__file__).parents[2] / "deploy"
MANIFESTS = DEPLOY / "kubernetes"
KUBERNETES = "1.30.0"
"""The oldest Kubernetes the manifests must work on (schema bundled by kubernetes-validate)."""


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def of_kind(kind: str) -> dict[str, Any]:
    (found,) = [d for d in documents() if d["kind"] == kind]
    return found


@pytest.mark.parametrize(
    "document", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_manifest_is_valid_kubernetes(document: dict[str, Any]) -> None:
    # strict: an unknown or misspelt field is an error, not silently dropped by the API server.
    kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_a_misspelt_field_is_caught() -> None:
    """The validation above can fail: the schema is there and strict."""
    broken = of_kind("Deployment")
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 30
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    files = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def container_environment() -> dict[str, str]:
    environ = dict(of_kind("ConfigMap")["data"])
    environ.update(of_kind("Secret")["stringData"])
    return environ


def test_configuration_names_only_real_settings_and_is_accepted() -> None:
    environ = container_environment()
    environ.update({"RELAY_REPLICA_ID": "relay-abc12", "RELAY_MEDIA_ADDRESSES": "203.0.113.7"})
    settings = Settings.from_env(environ, dotenv=None)
    assert not settings.simulators
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.redis_url.startswith("redis://")
    assert settings.udp_port_range is not None
    unknown = set(environ) - ENVIRONMENT_VARIABLES
    assert not unknown, f"not settings of the service: {sorted(unknown)}"


def test_deployment_probes_drain_and_media() -> None:
    deployment = of_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert ports["http"] == int(container_environment()["RELAY_PORT"])
    drain = float(container_environment()["RELAY_DRAIN_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] == 30 and drain < 30
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    env = {e["name"]: e.get("valueFrom", {}) for e in container["env"]}
    assert env["RELAY_MEDIA_ADDRESSES"]["fieldRef"]["fieldPath"] == "status.hostIP"
    assert env["RELAY_REPLICA_ID"]["fieldRef"]["fieldPath"] == "metadata.name"
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname", "one pod per node: shared ports"


def test_service_and_budget_select_the_deployment_s_pods() -> None:
    labels = of_kind("Deployment")["spec"]["template"]["metadata"]["labels"]
    service, budget = of_kind("Service"), of_kind("PodDisruptionBudget")
    assert service["spec"]["selector"].items() <= labels.items()
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert budget["spec"]["maxUnavailable"] == 1


def test_containerfile_builds_from_the_repository_and_runs_unprivileged() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert bases and all(base == "python:3.11-slim" for base in bases)
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE):
        for path in source.split():
            assert (DEPLOY.parent / path).exists(), f"COPY {path}: not in the repository"
    assert re.search(r"^USER 10001$", text, re.MULTILINE)
    assert 'ENTRYPOINT ["relay-service"]' in text and 'CMD ["serve"]' in text
    pod = of_kind("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 10001
