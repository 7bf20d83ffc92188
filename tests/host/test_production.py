"""The production image and the production-like stack, built and run for real."""

import io
import json
import os
import re
import secrets
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
from conftest import added_bytes, production_stack

from devstack.config import StackConfig
from devstack.images import ensure_app_image, ensure_base_images, ensure_prod_image
from devstack.isolated import copy_tree
from devstack.runtime import ca_bundle_path, detect

ROOT = Path(__file__).resolve().parents[2]
SIZE_BUDGET = 80 * 10**6


@pytest.fixture(scope="module")
def runtime():
    return detect(os.environ.get("CONTAINER_RUNTIME"))


@pytest.fixture(scope="module")
def config(runtime):
    config = StackConfig.load(ROOT)
    ensure_base_images(runtime, config)
    ensure_prod_image(runtime, config)
    return config


def run_in_prod_image(runtime, config, *command, **env):
    args = [*runtime.engine, "run", "--rm", "--read-only", "--tmpfs", "/tmp"]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    return subprocess.run(
        [*args, config.values["PROD_IMAGE"], *command], capture_output=True, text=True, timeout=120
    )


def manage_check_in_prod_image(runtime, config, *args, **env):
    return run_in_prod_image(runtime, config, "python3", "src/manage.py", "check", *args, **env)


def test_deploy_check_passes_with_zero_warnings_in_the_built_image(runtime, config):
    result = manage_check_in_prod_image(
        runtime,
        config,
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="api.example.com",
        DATABASE_URL="postgres://app:pw@db.example.com:5432/app",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_missing_production_secret_fails_fast_with_one_line(runtime, config):
    result = manage_check_in_prod_image(
        runtime, config, ALLOWED_HOSTS="api.example.com", DATABASE_URL="postgres://a:b@c/d"
    )
    assert result.returncode != 0
    assert "production settings need SECRET_KEY in the environment" in result.stderr


def test_prod_image_holds_only_runtime_dependencies(runtime, config):
    result = run_in_prod_image(
        runtime,
        config,
        "python3",
        "-c",
        (
            "import importlib.util as u, shutil;"
            "print([m for m in ('pytest','pytest_django','uv','pip_tools','watchfiles',"
            "'debugpy','coverage','ruff')"
            " if u.find_spec(m)], [t for t in ('gcc','cc','uv','git') if shutil.which(t)])"
        ),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] []"
    listing = run_in_prod_image(runtime, config, "ls", "/app", "/app/settings")
    assert "tests" not in listing.stdout.split()
    assert "dev.py" not in listing.stdout and "test.py" not in listing.stdout


def test_prod_image_fits_its_size_budget(runtime, config):
    added = added_bytes(runtime, config.values["PROD_IMAGE"], config.values["PYTHON_IMAGE"])
    print(f"prod image adds {added / 1e6:.1f} MB to {config.values['PYTHON_IMAGE']}")
    assert added <= SIZE_BUDGET, f"prod image adds {added / 1e6:.1f} MB, budget 80 MB"


def test_prod_image_carries_oci_labels(runtime, config):
    labels = runtime.image_facts(config.values["PROD_IMAGE"])[1]
    for key in ("source", "revision", "version", "created"):
        assert labels.get(f"org.opencontainers.image.{key}") not in (None, "")
    assert labels["org.opencontainers.image.version"] == "0.1.0"


@pytest.fixture(scope="module")
def prod_stack(runtime, config):
    with production_stack(runtime, "djstack-prodtest") as stack:
        yield stack


def test_production_like_stack_answers_the_same_health_check(prod_stack):
    status, body = prod_stack.health()
    assert status == 200, body
    assert json.loads(body)["status"] == "ok"


def test_production_container_is_read_only_non_root_without_capabilities(prod_stack):
    def in_web(*command):
        return prod_stack.exec("web", *command, capture=True, check=False, quiet=True)

    assert in_web("id", "-u").stdout.strip() == b"1001"
    assert in_web("touch", "/app/written").returncode != 0  # read-only root file system
    assert in_web("touch", "/tmp/written").returncode == 0  # the declared tmpfs
    status = in_web("grep", "-E", "^(CapEff|NoNewPrivs)", "/proc/1/status").stdout.decode()
    assert re.search(r"CapEff:\s+0+\n", status), status
    assert re.search(r"NoNewPrivs:\s+1", status), status


def test_production_stops_gracefully_on_sigterm(prod_stack):
    prod_stack.compose("stop", "web", capture=True)
    logs = prod_stack.compose("logs", "web", capture=True, quiet=True)
    text = (logs.stdout + logs.stderr).decode()
    assert "Handling signal: term" in text
    assert "Shutting down: Master" in text


# --- nothing secret in any layer --------------------------------------------------------------
CANARY = f"canary-{secrets.token_hex(12)}"
PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n" + CANARY + "\n-----END OPENSSH PRIVATE KEY-----\n"
)


@pytest.fixture(scope="module")
def images_built_from_a_tree_full_of_secrets(runtime, config):
    """Both targets, built from a copy of the checkout salted with secrets where people leave them."""
    workdir = Path(tempfile.mkdtemp(prefix="djstack-secrets-"))
    copy_tree(ROOT, workdir)
    (workdir / ".env").write_text(f"SECRET_KEY={CANARY}\n")
    (workdir / "src" / ".env").write_text(f"SECRET_KEY={CANARY}\n")
    (workdir / ".git").mkdir()
    (workdir / ".git" / "config").write_text(f"[credential]\n token = {CANARY}\n")
    (workdir / "src" / ".git").mkdir()
    (workdir / "src" / ".git" / "HEAD").write_text(CANARY)
    (workdir / "id_rsa").write_text(PRIVATE_KEY)
    (workdir / "src" / "deploy.key").write_text(PRIVATE_KEY)
    (workdir / "settings" / "tls.pem").write_text(PRIVATE_KEY)
    scan_config = StackConfig.load(
        workdir,
        overrides={
            "PYTHON_IMAGE": config.values["PYTHON_IMAGE"],
            "APP_IMAGE": "localhost/djstack-secretscan:dev",
            "PROD_IMAGE": "localhost/djstack-secretscan:prod",
        },
    )
    try:
        ensure_app_image(runtime, scan_config, force=True)
        ensure_prod_image(runtime, scan_config)
        yield [scan_config.values["APP_IMAGE"], scan_config.values["PROD_IMAGE"]]
    finally:
        for image in ("localhost/djstack-secretscan:dev", "localhost/djstack-secretscan:prod"):
            runtime.engine_cmd("rmi", image, capture=True, check=False, quiet=True)
        shutil.rmtree(workdir, ignore_errors=True)


def layer_files(archive: bytes):
    """(layer, path, content) for every file of every layer of a saved image."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as outer:
        for member in outer.getmembers():
            if not member.isfile():
                continue
            data = outer.extractfile(member).read()
            try:
                layer = tarfile.open(fileobj=io.BytesIO(data))
            except tarfile.TarError:
                continue  # manifest, config: checked through the history below
            with layer:
                for item in layer.getmembers():
                    content = layer.extractfile(item).read() if item.isfile() else b""
                    yield member.name, item.name, item.isdir(), content


def test_no_secret_in_any_layer_of_either_image(runtime, images_built_from_a_tree_full_of_secrets):
    ca_bundle = Path(ca_bundle_path(None)).read_bytes() if ca_bundle_path(None) else None
    private_key = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")
    for image in images_built_from_a_tree_full_of_secrets:
        archive = runtime.engine_cmd("save", image, capture=True, quiet=True).stdout
        findings, layers = [], set()
        for layer, path, is_dir, content in layer_files(archive):
            layers.add(layer)
            name = path.rstrip("/").rsplit("/", 1)[-1]
            if name == ".env" or name.startswith(".env."):
                findings.append(f"{layer}: {path} (.env file)")
            if name == ".git" or "/.git/" in f"/{path}":
                findings.append(f"{layer}: {path} (.git)")
            if "run/secrets" in path and not is_dir:
                findings.append(f"{layer}: {path} (a build secret)")
            if CANARY.encode() in content:
                findings.append(f"{layer}: {path} (the SECRET_KEY / token canary)")
            if private_key.search(content):
                findings.append(f"{layer}: {path} (a private key)")
            if ca_bundle and content == ca_bundle:
                findings.append(f"{layer}: {path} (the CA bundle passed as a build secret)")
        history = runtime.engine_cmd(
            "history", "--no-trunc", "--format", "{{.CreatedBy}}", image, capture=True, quiet=True
        ).stdout.decode()
        if CANARY in history or "BEGIN CERTIFICATE" in history:
            findings.append(f"{image}: history holds a secret")
        assert len(layers) >= 3, f"{image}: expected several layers, scanned {len(layers)}"
        assert findings == [], f"{image}:\n" + "\n".join(findings)
