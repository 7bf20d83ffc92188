"""Kubernetes: render the kustomize manifests in src/deploy/kubernetes, and run the local
overlay with `podman kube play` (`nox -s kube`).

Real clusters render with `kubectl apply -k` (or `kustomize build`). No kustomize binary is
needed here: `render` implements the subset the manifests use (resources, namespace, labels
and commonLabels, images, patches as strategic merges of named resources) and fails on
anything else, so a manifest never silently means something different here.

`podman kube play` (Podman >= 4.3) runs Pods, Deployments, ConfigMaps and
PersistentVolumeClaims. What it lacks is adapted by `podman_plan` (docs/kubernetes.md):
  - Service: each workload joins a network of the run's own with the names of the Services
    that select it as DNS aliases (`--network NET:alias=db`), and the Service given to
    `publish` gets a host port on 127.0.0.1;
  - Job: its pod template runs as a Pod (restartPolicy Never); kube.py waits for it to exit 0;
  - Secret: its values are written into the containers' env (Podman 4.3 stores a Secret it
    plays but cannot read it back into env: podman#16269, fixed in 4.4);
  - container ports: all but the published one are dropped (Podman 4.3 would publish each
    on every host address);
  - Namespace, Ingress, PodDisruptionBudget: not played (listed as skipped).
Every pod, volume (claims and emptyDirs) and network is named `<project>-...`, so runs
never meet.
"""

from __future__ import annotations

import base64
import copy
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import StackConfig
from .errors import StackError
from .runtime import Runtime
from .net import free_port, http

KUBE_DIR = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes"
OVERLAYS = {"base": KUBE_DIR / "base", "local": KUBE_DIR / "overlays" / "local",
            "production": KUBE_DIR / "overlays" / "production"}
PROJECT = "djstack-kube"  # `up` / `down`; `run` uses a name of its own, never touching it
RUN_PROJECT = "djstack-kube-run"
HEALTH_PATH = "/api/v1/health/"

Manifest = dict[str, Any]

KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "namespace", "labels", "commonLabels",
                      "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
                  "StorageClass", "CustomResourceDefinition", "IngressClass"}
WORKLOADS = {"Deployment", "Job"}
PLAYED = {"ConfigMap", "PersistentVolumeClaim", *WORKLOADS}
EMULATED = {"Service", "Secret"}


def _yaml():
    try:
        import yaml
    except ImportError:  # PyYAML comes with podman-compose, i.e. with the host tools
        raise StackError("PyYAML is missing: `pip install pyyaml` (or run `python3 "
                         "noxfile.py ...`, which installs it with podman-compose)") from None
    return yaml


def load_documents(path: Path) -> list[Manifest]:
    return [doc for doc in _yaml().safe_load_all(path.read_text()) if doc]


def to_yaml(documents: Sequence[Manifest]) -> str:
    return _yaml().safe_dump_all(list(documents), sort_keys=False)


# --- rendering (the kustomize subset) ------------------------------------------------------
def render(directory: Path, images: Mapping[str, str] | None = None) -> list[Manifest]:
    """The manifests of a kustomization directory, as `kubectl kustomize` would print them.
    `images` maps an image name to a full reference (like `kustomize edit set image`)."""
    file = directory / "kustomization.yaml"
    if not file.is_file():
        raise StackError(f"{directory} has no kustomization.yaml")
    spec = _yaml().safe_load(file.read_text()) or {}
    unsupported = set(spec) - KUSTOMIZATION_KEYS
    if unsupported:
        raise StackError(f"{file}: {', '.join(sorted(unsupported))} not supported by "
                         "devstack.kube; use kubectl apply -k, or extend kube.render")
    documents: list[Manifest] = []
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        documents += render(path) if path.is_dir() else load_documents(path)
    for patch in spec.get("patches", []):
        if set(patch) - {"path", "patch"}:
            raise StackError(f"{file}: patches take `path` or `patch` here (a strategic merge "
                             "of the resource it names), not target selectors")
        for doc in load_documents(directory / patch["path"]) if "path" in patch else \
                [_yaml().safe_load(patch["patch"])]:
            target = _find(documents, doc["kind"], doc["metadata"]["name"], file)
            documents[documents.index(target)] = strategic_merge(target, doc)
    if "namespace" in spec:
        for doc in documents:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = spec["namespace"]
    for entry in spec.get("labels", []):
        _add_labels(documents, entry["pairs"], templates=entry.get("includeTemplates", False),
                    selectors=entry.get("includeSelectors", False))
    if "commonLabels" in spec:
        _add_labels(documents, spec["commonLabels"], templates=True, selectors=True)
    replacements = {entry["name"]: _image_from(entry) for entry in spec.get("images", [])}
    replacements.update(images or {})
    for container in _containers(documents):
        name = image_name(container["image"])
        if name in replacements:
            container["image"] = replacements[name]
    return documents


def render_overlay(name: str, images: Mapping[str, str] | None = None) -> list[Manifest]:
    if name not in OVERLAYS:
        raise StackError(f"no overlay {name!r}: choose one of {', '.join(OVERLAYS)}")
    return render(OVERLAYS[name], images)


def _find(documents: list[Manifest], kind: str, name: str, where: Path) -> Manifest:
    for doc in documents:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise StackError(f"{where}: a patch names {kind}/{name}, which no resource defines")


def strategic_merge(base: Any, patch: Any) -> Any:
    """Maps merge key by key; lists of named maps (containers, env, volumes, ports...) merge
    by name; any other list, and every scalar, is replaced by the patch's value."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = strategic_merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(patch, list) and _named(base) and _named(patch):
        merged_list = list(base)
        names = [item["name"] for item in base]
        for item in patch:
            if item["name"] in names:
                index = names.index(item["name"])
                merged_list[index] = strategic_merge(base[index], item)
            else:
                merged_list.append(item)
        return merged_list
    return copy.deepcopy(patch)


def _named(items: list) -> bool:
    return all(isinstance(item, dict) and "name" in item for item in items)


def _pod_spec(doc: Manifest) -> Manifest | None:
    if doc["kind"] == "Pod":
        return doc["spec"]
    template = doc.get("spec", {}).get("template")
    return template.get("spec") if isinstance(template, dict) else None


def _containers(documents: list[Manifest]) -> Iterator[Manifest]:
    for doc in documents:
        spec = _pod_spec(doc) or {}
        yield from spec.get("initContainers", [])
        yield from spec.get("containers", [])


def _add_labels(documents: list[Manifest], pairs: Mapping[str, str], *, templates: bool,
                selectors: bool) -> None:
    for doc in documents:
        doc["metadata"].setdefault("labels", {}).update(pairs)
        spec = doc.get("spec", {})
        if templates and isinstance(spec.get("template"), dict):
            spec["template"].setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        if selectors and doc["kind"] == "Service":
            spec.setdefault("selector", {}).update(pairs)
        elif selectors and "selector" in spec:
            spec["selector"].setdefault("matchLabels", {}).update(pairs)


def image_name(reference: str) -> str:
    """The image without its tag or digest: docker.io/library/postgres:17 -> ...postgres."""
    name = reference.split("@", 1)[0]
    head, _, tail = name.rpartition("/")
    return f"{head}/{tail.split(':', 1)[0]}" if head else tail.split(":", 1)[0]


def _image_from(entry: Mapping[str, str]) -> str:
    name = entry.get("newName", entry["name"])
    if "digest" in entry:
        return f"{name}@{entry['digest']}"
    return f"{name}:{entry['newTag']}" if "newTag" in entry else name


# --- podman kube play -------------------------------------------------------------------------
@dataclass
class Workload:
    """One Deployment, or a Job's pod template as a Pod, ready for `podman kube play`."""

    name: str  # as in the manifests (web, db, migrate)
    kind: str
    aliases: list[str]  # the Services that select it: its DNS names on the run's network
    documents: list[Manifest]  # the workload and the ConfigMaps/PVCs it uses
    pods: list[str] = field(default_factory=list)  # IDs, once played

    @property
    def one_shot(self) -> bool:
        return self.kind == "Job"


@dataclass
class PodmanPlan:
    project: str
    workloads: list[Workload]
    volumes: list[str]
    published: dict[str, int] = field(default_factory=dict)  # Service -> host port
    skipped: list[str] = field(default_factory=list)

    @property
    def network(self) -> str:
        return self.project


def podman_plan(documents: Sequence[Manifest], *, project: str = PROJECT,
                publish: Mapping[str, int] | None = None, limits: bool = True) -> PodmanPlan:
    """Adapt rendered manifests to what `podman kube play` runs (see the module docstring).
    `limits=False` drops CPU/memory limits, for engines that cannot apply them."""
    docs = copy.deepcopy(list(documents))
    by_kind: dict[str, list[Manifest]] = {}
    for doc in docs:
        doc["metadata"].pop("namespace", None)
        by_kind.setdefault(doc["kind"], []).append(doc)
    skipped = [f"{doc['kind']}/{doc['metadata']['name']}" for doc in docs
               if doc["kind"] not in PLAYED | EMULATED]
    secrets = {doc["metadata"]["name"]: _secret_values(doc) for doc in by_kind.get("Secret", [])}
    config_maps = {doc["metadata"]["name"]: doc for doc in by_kind.get("ConfigMap", [])}
    claims = {doc["metadata"]["name"]: doc for doc in by_kind.get("PersistentVolumeClaim", [])}
    for claim in claims.values():
        claim["metadata"]["name"] = f"{project}-{claim['metadata']['name']}"
    published = dict(publish or {})
    workloads = []
    scratch: list[str] = []
    for doc in docs:
        if doc["kind"] not in WORKLOADS:
            continue
        name = doc["metadata"]["name"]
        spec = _pod_spec(doc)
        labels = doc["spec"]["template"].get("metadata", {}).get("labels", {})
        services = [svc for svc in by_kind.get("Service", [])
                    if svc["spec"].get("selector") and
                    all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())]
        _inline_secrets(spec, secrets, f"{doc['kind']}/{name}")
        for service in services:
            if service["metadata"]["name"] in published:
                _publish(spec, service, published[service["metadata"]["name"]])
        _unpublish_others(spec)
        for container in [] if limits else spec["containers"]:
            container.pop("resources", None)
        scratch += _rename_empty_dirs(spec, f"{project}-{name}")
        used = [config_maps[ref] for ref in _config_map_refs(spec) if ref in config_maps]
        volumes = [claims[v["persistentVolumeClaim"]["claimName"]]
                   for v in spec.get("volumes", []) if "persistentVolumeClaim" in v]
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]
                claim["claimName"] = f"{project}-{claim['claimName']}"
        if doc["kind"] == "Job":
            played = {"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": f"{project}-{name}", "labels": labels},
                      "spec": {**spec, "restartPolicy": "Never"}}
        else:
            played = {**doc, "metadata": {**doc["metadata"], "name": f"{project}-{name}"},
                      "spec": {**doc["spec"], "replicas": 1}}
        workloads.append(Workload(name=name, kind=doc["kind"], documents=[*volumes, *used, played],
                                  aliases=[svc["metadata"]["name"] for svc in services]))
    # Data services first, then one-shot Jobs, then the rest: what others wait for starts
    # first, and teardown (the reverse) stops the app before the database it is connected to.
    workloads.sort(key=lambda w: 0 if _has_claim(w) else 1 if w.one_shot else 2)
    unknown = set(published) - {alias for w in workloads for alias in w.aliases}
    if unknown:
        raise StackError(f"cannot publish {', '.join(sorted(unknown))}: no workload behind it")
    if not limits:
        skipped.append("resources (this engine cannot apply limits)")
    return PodmanPlan(project=project, workloads=workloads,
                      volumes=[*(claim["metadata"]["name"] for claim in claims.values()), *scratch],
                      published=published, skipped=skipped)


def _has_claim(workload: Workload) -> bool:
    return any(doc["kind"] == "PersistentVolumeClaim" for doc in workload.documents)


def _secret_values(secret: Manifest) -> dict[str, str]:
    values = {key: base64.b64decode(value).decode()
              for key, value in secret.get("data", {}).items()}
    values.update(secret.get("stringData", {}))
    return values


def _inline_secrets(spec: Manifest, secrets: Mapping[str, dict[str, str]], where: str) -> None:
    def values(name: str) -> dict[str, str]:
        if name not in secrets:
            raise StackError(f"{where} uses the Secret {name!r}, which the overlay does not define")
        return secrets[name]

    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        env: list[Manifest] = []
        sources = []
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                secret = values(source["secretRef"]["name"])
                env += [{"name": key, "value": value} for key, value in secret.items()]
            else:
                sources.append(source)
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            env.append({"name": variable["name"], "value": values(ref["name"])[ref["key"]]}
                       if ref else variable)
        container.pop("envFrom", None)
        container.pop("env", None)
        container.update({"envFrom": sources} if sources else {}, **({"env": env} if env else {}))


def _config_map_refs(spec: Manifest) -> list[str]:
    names = []
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        names += [source["configMapRef"]["name"] for source in container.get("envFrom", [])
                  if "configMapRef" in source]
        names += [v["valueFrom"]["configMapKeyRef"]["name"] for v in container.get("env", [])
                  if "configMapKeyRef" in v.get("valueFrom", {})]
    return list(dict.fromkeys(names))


def _publish(spec: Manifest, service: Manifest, host_port: int) -> None:
    """Give the Service's first port a host port on 127.0.0.1 (only this machine sees it)."""
    target = service["spec"]["ports"][0].get("targetPort", service["spec"]["ports"][0]["port"])
    for container in spec["containers"]:
        for port in container.get("ports", []):
            if target in (port.get("name"), port["containerPort"]):
                port.update(hostPort=host_port, hostIP="127.0.0.1")
                return
    raise StackError(f"Service {service['metadata']['name']}: no container port {target!r}")


def _unpublish_others(spec: Manifest) -> None:
    """Drop container ports without a host port: Podman 4.3 would publish each one on the
    host's every address (and clash with the dev stack). Probes naming one get its number."""
    containers = [*spec.get("initContainers", []), *spec.get("containers", [])]
    for container in containers:
        numbers = {port["name"]: port["containerPort"] for port in container.get("ports", [])
                   if "name" in port}
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            handler = container.get(probe, {})
            action = handler.get("httpGet") or handler.get("tcpSocket")
            if action and action["port"] in numbers:
                action["port"] = numbers[action["port"]]
        kept = [port for port in container.get("ports", []) if "hostPort" in port]
        container.pop("ports", None)
        container.update({"ports": kept} if kept else {})


def _rename_empty_dirs(spec: Manifest, prefix: str) -> list[str]:
    """Podman 4.3 makes each emptyDir a named volume called like the pod's volume (`tmp`),
    shared by every pod on the host: give each its own name. Returns the new names."""
    renamed = {}
    for volume in spec.get("volumes", []):
        if "emptyDir" in volume:
            renamed[volume["name"]] = volume["name"] = f"{prefix}-{volume['name']}"
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        for mount in container.get("volumeMounts", []):
            mount["name"] = renamed.get(mount["name"], mount["name"])
    return list(renamed.values())


# --- running -----------------------------------------------------------------------------------
@dataclass
class Run:
    """What `run_local` did, for the session's report."""

    url: str
    timings: dict[str, float]
    skipped: list[str]


def local_images(config: StackConfig) -> dict[str, str]:
    """The images the local overlay names, mapped to the ones this machine has (.env)."""
    return {"localhost/djstack-app": config.values["PROD_IMAGE"],
            "docker.io/library/postgres": config.values["POSTGRES_IMAGE"],
            "docker.io/library/redis": config.values["REDIS_IMAGE"]}


def ensure_images(runtime: Runtime, config: StackConfig) -> None:
    from .images import ensure_base_images, ensure_prod_image

    ensure_base_images(runtime, config)
    ensure_prod_image(runtime, config)


def local_plan(config: StackConfig, *, project: str = PROJECT, port: int | None = None,
               limits: bool = True) -> PodmanPlan:
    documents = render_overlay("local", local_images(config))
    return podman_plan(documents, project=project, publish={"web": port or free_port()},
                       limits=limits)


@contextmanager
def played(runtime: Runtime, plan: PodmanPlan, *, keep: bool = False) -> Iterator[PodmanPlan]:
    """Play every workload of the plan on its own network; tear all of it down afterwards
    (pods, volumes, network) unless `keep`, or when starting failed."""
    ok = False
    try:
        runtime.network_create(plan.network)
        for workload in plan.workloads:
            workload.pods = runtime.kube_play(to_yaml(workload.documents), network=plan.network,
                                              aliases=workload.aliases)
        yield plan
        ok = True
    finally:
        if not (keep and ok):
            down(runtime, plan)


def down(runtime: Runtime, plan: PodmanPlan) -> None:
    for workload in reversed(plan.workloads):
        runtime.kube_down(to_yaml(workload.documents))
    runtime.remove_volumes(plan.volumes)
    runtime.network_remove(plan.network)


def logs_tail(runtime: Runtime, workload: Workload, lines: int = 5) -> str:
    text = "".join(runtime.container_logs(container) for pod in workload.pods
                   for container in runtime.pod_containers(pod))
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"


def wait_one_shot(runtime: Runtime, plan: PodmanPlan, timeout: float) -> None:
    """Wait for every Job (played as a Pod) to end; fail with its log unless it exited 0."""
    for workload in plan.workloads:
        if not workload.one_shot:
            continue
        for pod in workload.pods:
            for container in runtime.pod_containers(pod):
                code = runtime.wait_exit(container, timeout)
                if code != 0:
                    state = (f"did not finish in {timeout:g}s" if code is None
                             else f"exit code {code}")
                    raise StackError(f"the {workload.name} Job failed ({state}): "
                                     f"{logs_tail(runtime, workload)}")


def wait_healthy(url: str, timeout: float, on_timeout: Callable[[], str]) -> float:
    start = time.monotonic()
    status, body = None, ""
    while time.monotonic() - start < timeout:
        status, body = http("GET", url)
        if status == 200:
            return time.monotonic() - start
        time.sleep(0.5)
    raise StackError(f"{url} did not answer 200 within {timeout:g}s (last: {status} "
                     f"{body[:200]}); {on_timeout()}")


def run_local(runtime: Runtime, config: StackConfig, *, project: str = PROJECT,
              keep: bool = False, timeout: float = 180) -> Run:
    """Render the local overlay, play it, run the migration Job, get 200 from the health
    endpoint, then tear everything down (unless `keep`)."""
    timings: dict[str, float] = {}
    mark = time.monotonic()

    def lap(step: str) -> None:
        nonlocal mark
        timings[step], mark = time.monotonic() - mark, time.monotonic()

    ensure_images(runtime, config)
    lap("images")
    plan = local_plan(config, project=project, limits=runtime.applies_resource_limits())
    url = f"http://127.0.0.1:{plan.published['web']}{HEALTH_PATH}"
    web = next(w for w in plan.workloads if "web" in w.aliases)
    with played(runtime, plan, keep=keep):
        lap("play")
        wait_one_shot(runtime, plan, timeout)
        lap("migrate")
        wait_healthy(url, timeout, lambda: f"app log: {logs_tail(runtime, web)}")
        lap("healthy")
    if not keep:
        lap("down")
    return Run(url=url, timings=timings, skipped=plan.skipped)


USAGE = ("Usage: nox -s kube [-- run | up | down | render [base|local|production]]  "
         "(run: play, check health, tear down)")


def command(runtime: Runtime, config: StackConfig, args: Sequence[str]) -> str:
    """The `kube` session: returns what to print."""
    action, rest = (args[0], list(args[1:])) if args else ("run", [])
    if action == "render" and len(rest) <= 1:
        overlay = rest[0] if rest else "local"
        images = local_images(config) if overlay == "local" else None
        return to_yaml(render_overlay(overlay, images))
    if action in {"run", "up"} and not rest:
        result = run_local(runtime, config, keep=action == "up",
                           project=PROJECT if action == "up" else RUN_PROJECT)
        steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result.timings.items())
        state = "running (stop: nox -s kube -- down)" if action == "up" else "torn down"
        return (f"200 from {result.url} ({steps}); {state}; "
                f"not played by podman: {', '.join(result.skipped) or 'nothing'}")
    if action == "down" and not rest:
        down(runtime, local_plan(config))
        return f"{PROJECT}: pods, volumes and network removed"
    raise StackError(USAGE)
