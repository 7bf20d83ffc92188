"""The Kubernetes manifests (src/deploy/kubernetes): rendered by devstack.kube, valid against
the Kubernetes schemas offline, hardened as docs/kubernetes.md says, and served for real by
`podman kube play` until the health endpoint answers 200."""

import json
import os
import secrets
import socket
from pathlib import Path

import pytest

from devstack import kube
from devstack.config import StackConfig
from devstack.errors import StackError
from devstack.runtime import detect
from devstack.net import http

ROOT = Path(__file__).resolve().parents[2]

# The oldest Kubernetes release still commonly run, and the newest the validator bundles.
KUBERNETES_VERSIONS = ("1.29", "1.37")
APP_WORKLOADS = ("Deployment/web", "Job/migrate")


def rendered(overlay: str) -> list[dict]:
    return kube.render_overlay(overlay)


def by_id(documents: list[dict]) -> dict[str, dict]:
    return {f"{doc['kind']}/{doc['metadata']['name']}": doc for doc in documents}


def pod_spec(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to reach the network fails the test: the schemas must be bundled."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", sorted(kube.OVERLAYS))
def test_every_manifest_validates_against_the_kubernetes_schemas_offline(overlay, version,
                                                                          offline):
    import kubernetes_validate

    documents = rendered(overlay)
    assert documents
    for doc in documents:
        # strict: an unknown or misspelt field fails too; a kind without a schema raises.
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_catches_a_misspelt_field(offline):
    import kubernetes_validate

    web = by_id(rendered("base"))["Deployment/web"]
    pod_spec(web)["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        kubernetes_validate.validate(web, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("overlay", sorted(kube.OVERLAYS))
def test_app_pods_run_non_root_read_only_with_probes_and_limits(overlay):
    documents = by_id(rendered(overlay))
    for name in APP_WORKLOADS:
        spec = pod_spec(documents[name])
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        (container,) = spec["containers"]
        context = container["securityContext"]
        assert context["runAsUser"] == 1001 and context["runAsNonRoot"] is True
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
        assert "emptyDir" in next(v for v in spec["volumes"] if v["name"] == tmp["name"])
        assert container["envFrom"]  # settings come from the ConfigMap and the Secret
    for doc in documents.values():
        if doc["kind"] in {"Deployment", "Job"}:
            for container in pod_spec(doc)["containers"]:
                assert {"cpu", "memory"} <= set(container["resources"]["requests"])
                assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    web = pod_spec(documents["Deployment/web"])["containers"][0]
    # Readiness asks the database and cache; liveness only whether the process serves.
    assert web["readinessProbe"]["httpGet"]["path"] == kube.HEALTH_PATH
    assert web["livenessProbe"]["httpGet"]["path"] == "/api/v1/health/live/"
    migrate = documents["Job/migrate"]
    assert pod_spec(migrate)["restartPolicy"] == "Never"
    assert pod_spec(migrate)["containers"][0]["args"][-2:] == ["migrate", "--noinput"]


def test_local_overlay_brings_its_own_database_cache_and_example_secrets():
    documents = by_id(rendered("local"))
    for name in ("Deployment/db", "Service/db", "PersistentVolumeClaim/db-data",
                 "Deployment/redis", "Service/redis", "PersistentVolumeClaim/redis-data"):
        assert name in documents
    for name in ("Secret/app-secrets", "Secret/db-credentials"):
        annotations = documents[name]["metadata"]["annotations"]
        assert annotations["djstack.example/values"] == "example-only"
    assert documents["ConfigMap/app-config"]["data"]["SECURE_SSL_REDIRECT"] == "false"
    assert {doc["metadata"].get("namespace") for doc in documents.values()
            if doc["kind"] != "Namespace"} == {"djstack"}
    assert pod_spec(documents["Deployment/web"])["containers"][0]["image"] == \
        "localhost/djstack-app:prod"


def test_production_overlay_uses_managed_services_and_a_registry_image():
    documents = by_id(rendered("production"))
    assert not [name for name, doc in documents.items()
                if doc["kind"] in {"Secret", "PersistentVolumeClaim"}
                or name.split("/")[1] in {"db", "redis"}]
    web = documents["Deployment/web"]
    assert web["spec"]["replicas"] >= 3
    container = pod_spec(web)["containers"][0]
    assert container["image"].startswith("registry.example.com/")
    # The patch merged into the base container (by name): the base's probes and ports stay.
    assert container["ports"][0]["containerPort"] == 8000 and "readinessProbe" in container
    assert container["resources"]["limits"]["memory"] == "768Mi"
    assert documents["ConfigMap/app-config"]["data"]["SECURE_SSL_REDIRECT"] == "true"
    assert documents["ConfigMap/app-config"]["data"]["MIGRATE_ON_START"] == "false"
    assert "Ingress/web" in documents and "PodDisruptionBudget/web" in documents


def test_no_image_ever_contains_the_manifests():
    lines = (ROOT / ".containerignore").read_text().splitlines()
    assert "src/deploy/" in lines


def test_render_rejects_what_it_does_not_implement(tmp_path):
    (tmp_path / "kustomization.yaml").write_text(
        "resources: []\nconfigMapGenerator:\n  - name: x\n    literals: [A=b]\n")
    with pytest.raises(StackError, match="configMapGenerator not supported"):
        kube.render(tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\npatches:\n  - path: patch.yaml\n")
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    (tmp_path / "patch.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n")
    with pytest.raises(StackError, match="ConfigMap/b, which no resource defines"):
        kube.render(tmp_path)


def test_podman_plan_emulates_services_jobs_and_secrets():
    plan = kube.podman_plan(rendered("local"), project="djstack-kube-unit", publish={"web": 18000})
    workloads = {w.name: w for w in plan.workloads}
    assert [w.name for w in plan.workloads] == ["db", "redis", "migrate", "web"]
    assert workloads["db"].aliases == ["db"] and workloads["migrate"].aliases == []
    job = workloads["migrate"].documents[-1]
    assert job["kind"] == "Pod" and job["spec"]["restartPolicy"] == "Never"
    assert job["metadata"]["name"] == "djstack-kube-unit-migrate"
    web = workloads["web"].documents[-1]
    container = pod_spec(web)["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP",
                                   "hostPort": 18000, "hostIP": "127.0.0.1"}]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["DATABASE_URL"].endswith("@db:5432/app")  # the Secret, inlined
    assert container["envFrom"] == [{"configMapRef": {"name": "app-config"}}]
    assert "ports" not in pod_spec(workloads["db"].documents[-1])["containers"][0]
    assert set(plan.volumes) >= {"djstack-kube-unit-db-data", "djstack-kube-unit-web-tmp"}
    assert plan.skipped == ["Namespace/djstack"]


def test_kube_play_serves_the_health_endpoint_then_leaves_nothing_behind():
    """The `kube` flow for real: prod image, PostgreSQL and Redis under podman kube play."""
    runtime = detect(os.environ.get("CONTAINER_RUNTIME"))
    if not runtime.plays_kube_yaml:
        try:  # kube play is Podman's: use it beside Docker where it is installed (CI has both)
            runtime = detect("podman")
        except StackError as exc:
            pytest.skip(f"`podman kube play` needs Podman, and {exc}")
    config = StackConfig.load(ROOT)
    kube.ensure_images(runtime, config)
    plan = kube.local_plan(config, project=f"djstack-kube-t{secrets.token_hex(3)}",
                           limits=runtime.applies_resource_limits())
    url = f"http://127.0.0.1:{plan.published['web']}{kube.HEALTH_PATH}"
    with kube.played(runtime, plan):
        kube.wait_one_shot(runtime, plan, timeout=120)
        kube.wait_healthy(url, 120, lambda: "")
        status, body = http("GET", url)
        assert status == 200 and json.loads(body)["status"] == "ok", body
        (web,) = [w for w in plan.workloads if w.name == "web"]
        (container,) = runtime.pod_containers(web.pods[0])
        probe = runtime.engine_cmd("exec", container, "sh", "-c",
                                   "id -u; touch /app/x 2>/dev/null || echo read-only",
                                   capture=True).stdout.decode().split()
        assert probe == ["1001", "read-only"]
    for listing in (["ps", "-a"], ["pod", "ps"]):
        left = runtime.engine_cmd(*listing, "--filter", f"name={plan.project}-", "--format",
                                  "{{.Names}}", capture=True).stdout.decode().split()
        assert left == [], f"left behind: {left}"
    assert not [name for name in plan.volumes if runtime.volume_exists(name)]
    assert runtime.engine_cmd("network", "inspect", plan.network, check=False, capture=True,
                              quiet=True).returncode != 0
