"""deploy/kubernetes renders with `kubectl kustomize`, every object validates strictly against a
current Kubernetes, and the Deployment keeps the promises docs/operations.md makes: non-root,
read-only root filesystem, gRPC probes on the plaintext health port, metrics for the scraper,
AWS credentials from the pod's identity and never keys, and migrations as a Job."""

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from broker.adapters.config.policy_file import load_policy_file

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
KUBECTL = shutil.which("kubectl")
VERSION = "1.30.0"
# Custom resources, which kubernetes-validate has no schema for.
CUSTOM_GROUPS = ("monitoring.coreos.com/",)
pytestmark = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl (with kustomize v5) is not installed"
)


def rendered(directory: str) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    out = subprocess.run(
        [KUBECTL, "kustomize", str(KUBERNETES / directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [document for document in yaml.safe_load_all(out) if document]


def the(objects: list[dict[str, Any]], kind: str, name: str = "") -> dict[str, Any]:
    """The one object of that kind (of that name, where the page's adds another)."""
    [found] = [
        o for o in objects if o["kind"] == kind and (not name or o["metadata"]["name"] == name)
    ]
    return found


@pytest.mark.parametrize("directory", ["base", "overlays/example"])
def test_every_object_validates_strictly(directory: str) -> None:
    objects = rendered(directory)

    checked = [o for o in objects if not o["apiVersion"].startswith(CUSTOM_GROUPS)]
    for manifest in checked:
        kubernetes_validate.validate(manifest, VERSION, strict=True)
    assert {o["kind"] for o in checked} >= {
        "Deployment",
        "Service",
        "ServiceAccount",
        "ConfigMap",
        "Job",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }


def test_the_deployment_runs_as_promised() -> None:
    objects = rendered("overlays/example")
    deployment = the(objects, "Deployment", "accessbroker")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}

    assert deployment["spec"]["replicas"] == 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    health_port = int(env["BROKER_HEALTH_LISTEN"].rsplit(":", 1)[1])
    assert container["readinessProbe"]["grpc"]["port"] == health_port
    assert container["livenessProbe"]["grpc"]["port"] == health_port
    assert env["BROKER_AUTH_MODE"] == "mtls"
    # Required by `serve`; this account's, set once.
    assert [e["name"] for e in container["env"]].count("BROKER_PERMISSIONS_BOUNDARY_ARN") == 1
    assert env["BROKER_PERMISSIONS_BOUNDARY_ARN"] == (
        "arn:aws:iam::123456789012:policy/accessbroker-boundary"
    )
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"
    assert container["image"] == "registry.example.com/platform/accessbroker:0.1.0"
    assert the(objects, "Job")["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    account = the(objects, "ServiceAccount")["metadata"]["annotations"]
    assert account["eks.amazonaws.com/role-arn"].endswith(":role/accessbroker-prod")


def test_the_budget_and_the_network_policy_select_the_brokers_pods_only() -> None:
    objects = rendered("overlays/example")
    pods = the(objects, "Deployment", "accessbroker")["spec"]["template"]["metadata"]["labels"]

    for selector in (
        the(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        the(objects, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
        the(objects, "ServiceMonitor")["spec"]["selector"]["matchLabels"],
    ):
        assert selector and selector.items() <= pods.items()


def test_the_access_policy_in_the_config_map_loads(tmp_path: Path) -> None:
    config = the(rendered("base"), "ConfigMap")
    policy = tmp_path / "policy.yaml"
    policy.write_text(config["data"]["policy.yaml"])

    assert load_policy_file(policy).admins == {"spiffe://example.org/platform/admin"}


def test_the_page_sits_behind_its_proxy_and_is_a_delegate_of_the_broker(tmp_path: Path) -> None:
    objects = rendered("overlays/example")
    pod = the(objects, "Deployment", "accessbroker-web")["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    env = {e["name"]: e["value"] for e in containers["web"]["env"]}
    broker_pods = the(objects, "Deployment", "accessbroker")["spec"]["template"]["metadata"]
    policy = tmp_path / "policy.yaml"
    policy.write_text(the(objects, "ConfigMap")["data"]["policy.yaml"])

    assert "--upstream=http://127.0.0.1:8080/" in containers["oauth2-proxy"]["args"]
    assert env["ACCESSBROKER_WEB_LISTEN"] == "127.0.0.1:8080"  # only the proxy reaches it
    assert env["ACCESSBROKER_WEB_TRUSTED_PROXIES"] == "127.0.0.1/32"
    assert containers["web"]["command"] == ["accessbroker-web"]
    # The broker's own image: the page ships in it.
    assert containers["web"]["image"] == "registry.example.com/platform/accessbroker:0.1.0"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert load_policy_file(policy).delegates == {"spiffe://example.org/platform/web"}
    # The broker's selectors do not take in the page's pods.
    web_labels = the(objects, "Deployment", "accessbroker-web")["spec"]["template"]["metadata"]
    assert not broker_pods["labels"].items() <= web_labels["labels"].items()
