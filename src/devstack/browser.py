"""`nox -s browser`: the API's documentation pages in a real browser (headless Chromium).

Each page must render every operation of the app's own schema, with every host but
127.0.0.1 unresolvable: a page that needs the internet (a CDN, web fonts) fails here.
"""

from __future__ import annotations

import json
import shutil
import subprocess

from .errors import StackError
from .net import http

RENDER_TIMEOUT = 120  # seconds for one page, scripts included
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# The element each page renders per operation (Swagger UI's id, ReDoc's section link).
PAGES = {
    "Swagger UI": ("/api/v1/docs/", 'id="operations-{tag}-{operation}"'),
    "ReDoc": ("/api/v1/redoc/", "operation/{operation}"),
}


def find_chromium() -> str:
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    raise StackError(
        "no Chromium found (looked for " + ", ".join(CHROMIUM_NAMES) + "); install it "
        "(Debian/Ubuntu: apt install chromium; Fedora: dnf install chromium), then retry"
    )


def rendered(chromium: str, url: str) -> str:
    """The page's DOM once its scripts ran. No sandbox: it needs user namespaces, which CI
    machines and containers often lack, and the page is the app's own, on loopback."""
    try:
        result = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--virtual-time-budget=20000",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=RENDER_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise StackError(
            f"Chromium did not finish rendering {url} within {RENDER_TIMEOUT} s"
        ) from None
    if result.returncode != 0 or not result.stdout.strip():
        tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
        raise StackError(f"Chromium could not render {url}: {tail[0]}")
    return result.stdout


def check_docs_pages(app_url: str) -> list[str]:
    """One line per page that rendered every operation; StackError naming the missing ones."""
    status, body = http("GET", f"{app_url}/api/v1/schema/?format=json")
    if status != 200:
        raise StackError(f"the schema at {app_url}/api/v1/schema/ answered {status}: {body[:200]}")
    operations = [
        (details.get("tags", ["default"])[0], details["operationId"])
        for methods in json.loads(body)["paths"].values()
        for details in methods.values()
        if isinstance(details, dict) and "operationId" in details  # not a path's parameters
    ]
    chromium, report = find_chromium(), []
    for page, (path, marker) in PAGES.items():
        dom = rendered(chromium, f"{app_url}{path}")
        missing = [op for tag, op in operations if marker.format(tag=tag, operation=op) not in dom]
        if missing:
            raise StackError(
                f"{page} ({app_url}{path}) did not render {', '.join(missing)} of the "
                f"{len(operations)} operations in the schema; open it in a browser to see why"
            )
        report.append(f"{page}: all {len(operations)} operations rendered, offline ({path})")
    return report
