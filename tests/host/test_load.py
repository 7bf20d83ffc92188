"""The production-like stack (gunicorn, settings.prod: writes need a token, throttling on)
under a bounded load on loopback: thousands of mixed requests from dozens of clients."""

import json
import os
import re
import urllib.request
from pathlib import Path

import pytest
from conftest import production_stack

from devstack.config import StackConfig
from devstack.images import ensure_base_images, ensure_prod_image
from devstack.load import api_tokens, run_load
from devstack.net import http, poll
from devstack.runtime import detect

ROOT = Path(__file__).resolve().parents[2]
CLIENTS, REQUESTS_PER_CLIENT = 40, 80  # 3200 requests, 800 of them writes
NOTES = "/api/v1/notes/"

STORED_NOTES = (
    "import json; from notes.models import Note;"
    "print(json.dumps(list(Note.objects.values_list('id', 'title'))))"
)


@pytest.fixture(scope="module")
def prod_stack():
    runtime = detect(os.environ.get("CONTAINER_RUNTIME"))
    config = StackConfig.load(ROOT)
    ensure_base_images(runtime, config)
    ensure_prod_image(runtime, config)
    with production_stack(runtime, "djstack-loadtest") as stack:
        yield stack


def manage(stack, *args: str) -> str:
    """The last line a manage.py command printed (`shell` may print a line of its own first)."""
    result = stack.exec("web", "python3", "src/manage.py", *args, capture=True, quiet=True)
    return result.stdout.decode().strip().splitlines()[-1]


@pytest.fixture(scope="module")
def tokens(prod_stack):
    """One API token per client. The first made as docs/api.md says (`drf_create_token`), the
    others in one go (one `exec` each would take a minute)."""
    others = api_tokens(prod_stack, CLIENTS)[1:]
    output = manage(prod_stack, "drf_create_token", "load0")
    first = re.fullmatch(r"Generated token (\w+) for user load0", output)
    assert first, output
    return [first.group(1), *others]


def test_production_writes_need_a_token_reads_do_not(prod_stack, tokens):
    url = f"{prod_stack.app_url}{NOTES}"
    status, body = http("POST", url, {"title": "anonymous"})
    assert status == 401 and json.loads(body)["errors"]["__all__"], body
    status, body = http(
        "POST", url, {"title": "with a token"}, headers={"Authorization": f"Token {tokens[0]}"}
    )
    assert status == 201, body
    assert http("GET", url)[0] == 200


def test_thousands_of_mixed_requests_from_dozens_of_clients_without_an_error(prod_stack, tokens):
    result = run_load(
        prod_stack.app_url, tokens, clients=CLIENTS, requests_per_client=REQUESTS_PER_CLIENT
    )
    print(
        f"{result.requests} requests from {CLIENTS} clients in {result.seconds:.1f}s: "
        f"{result.per_second:.0f}/s, p99 {result.p99_ms:.0f} ms, {len(result.written)} writes"
    )
    assert result.requests == CLIENTS * REQUESTS_PER_CLIENT
    assert result.errors == [], f"{len(result.errors)} errors, first: {result.errors[:3]}"
    assert len(result.written) == CLIENTS * REQUESTS_PER_CLIENT // 4
    stored = dict(json.loads(manage(prod_stack, "shell", "-c", STORED_NOTES)))
    assert {note_id: stored.get(note_id) for note_id in result.written} == result.written


@pytest.mark.parametrize("page", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_docs_pages_and_every_asset_they_load_come_from_the_app(prod_stack, page):
    status, html = http("GET", f"{prod_stack.app_url}{page}")
    assert status == 200, html
    assets = set(re.findall(r'(?:src|href)="([^"]+)"', html))
    assert assets and all(asset.startswith("/static/") for asset in assets), assets
    for asset in assets:  # hashed names from the manifest, served by whitenoise
        with urllib.request.urlopen(f"{prod_stack.app_url}{asset}", timeout=10) as response:
            assert response.status == 200 and response.read(), asset


# After every other anonymous request of this module: it uses up the anonymous quota.
def test_anonymous_clients_are_throttled_in_the_one_error_shape(prod_stack):
    url = f"{prod_stack.app_url}{NOTES}?limit=1"
    statuses = [http("GET", url) for _ in range(110)]  # default API_THROTTLE_ANON: 100/minute
    throttled = [body for status, body in statuses if status == 429]
    assert throttled, sorted({status for status, _ in statuses})
    assert "throttled" in json.loads(throttled[0])["errors"]["__all__"][0]


def test_without_redis_readiness_names_the_cache_and_the_throttled_api_keeps_working(
    prod_stack, tokens
):
    prod_stack.compose("stop", "redis", capture=True)
    prod_stack.repair_names()  # Podman 4's DNS: see test_api_faults.compose
    try:

        def cache_reported():
            status, body = http("GET", f"{prod_stack.app_url}/api/v1/health/")
            return status == 503 and json.loads(body).get("failed") == ["cache"], body

        ok, seen, _ = poll(cache_reported, timeout=5)
        assert ok, seen
        headers = {"Authorization": f"Token {tokens[1]}"}
        status, body = http(
            "POST", f"{prod_stack.app_url}{NOTES}", {"title": "no Redis"}, headers=headers
        )
        assert status == 201, body
        assert http("GET", f"{prod_stack.app_url}{NOTES}", headers=headers)[0] == 200
        assert http("GET", f"{prod_stack.app_url}/api/v1/health/live/")[0] == 200
    finally:
        prod_stack.compose("start", "redis", capture=True)
        prod_stack.repair_names()
