"""A bounded, mixed workload against the notes API: a fixed number of requests from N
concurrent clients (threads, one keep-alive connection each), reads and authenticated writes."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

NOTES = "/api/v1/notes/"
# One user and API token per client, as distinct API clients would be: each stays far below
# the default per-user rate (API_THROTTLE_USER), so throttling is on but never reached.
CREATE_USERS_AND_TOKENS = """
import json
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
users = [get_user_model().objects.get_or_create(username=f"load{{n}}")[0] for n in range({count})]
print(json.dumps([Token.objects.get_or_create(user=user)[0].key for user in users]))
"""


@dataclass
class LoadResult:
    requests: int
    seconds: float
    p99_ms: float
    errors: list[str] = field(default_factory=list)
    written: dict[int, str] = field(default_factory=dict)  # id -> title, every 201

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_load(
    base_url: str,
    tokens: list[str],
    *,
    clients: int,
    requests_per_client: int,
    write_every: int = 4,
) -> LoadResult:
    """Client n sends `requests_per_client` requests with token n % len(tokens): every
    `write_every`-th a POST, the others a page of the list or one of its own notes."""
    address = urlsplit(base_url)
    latencies: list[float] = []
    errors: list[str] = []
    written: dict[int, str] = {}
    lock = threading.Lock()

    def client(number: int) -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        headers = {
            "Authorization": f"Token {tokens[number % len(tokens)]}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        mine: list[int] = []
        for sequence in range(requests_per_client):
            if sequence % write_every == 0:
                title = f"load {number}-{sequence}"
                method, path, body, expected = "POST", NOTES, json.dumps({"title": title}), 201
            else:
                own = f"{NOTES}{mine[sequence % len(mine)]}/" if mine and sequence % 2 else None
                method, path, body, expected = "GET", own or f"{NOTES}?limit=10", None, 200
            started = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                status, text = response.status, response.read().decode(errors="replace")
            except (OSError, http.client.HTTPException) as exc:
                connection.close()  # a fresh connection for the next request
                status, text = None, f"{type(exc).__name__}: {exc}"
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if status != expected:
                    errors.append(f"{method} {path}: {status} {text[:200]}")
                elif method == "POST":
                    note_id = json.loads(text)["id"]
                    written[note_id] = title
                    mine.append(note_id)
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if ordered else 0.0
    return LoadResult(len(latencies), seconds, p99, errors, written)


def api_tokens(stack, count: int, service: str = "web") -> list[str]:
    """`count` users with an API token each, made in one `manage.py shell` in the service."""
    script = CREATE_USERS_AND_TOKENS.format(count=count)
    result = stack.exec(
        service, "python3", "src/manage.py", "shell", "-c", script, capture=True, quiet=True
    )
    return json.loads(result.stdout.decode().strip().splitlines()[-1])
