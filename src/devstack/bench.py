"""`nox -s bench`: measure the inner loop on this machine; print a table, write docs/benchmarks.md.

Everything runs on a copy of the checkout with its own stack (djstack-wf-bench-*), volumes,
free ports and image tags (localhost/djstack-wf-bench-app:*), so the developer's stack and the
shared app image are never touched; the copy, the stack, its volumes and the tags are removed
at the end. Timings are wall-clock, as the developer sees them: `up` and `down` are the Nox
sessions run as commands.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from .config import StackConfig
from .errors import StackError
from .images import add_dependency, ensure_app_image
from .isolated import checkout_copy, isolated_overrides
from .load import api_tokens, run_load
from .net import free_port, http, poll, postgres_answers
from .production import ProdStack
from .runtime import Runtime
from .stack import Stack

BENCH_TAG = "localhost/djstack-wf-bench-app"
# Small pure-Python packages the app does not use: one is added per dependency rebuild.
NEW_DEPENDENCIES = ("six", "toolz", "tabulate", "cachetools", "itsdangerous", "text-unidecode")
PROBE_ROUTE = "__bench__/"


@dataclass
class Row:
    name: str
    samples: list[float]
    target: str = ""
    met: bool | None = None
    unit: str = "s"

    def cells(self) -> list[str]:
        if not self.samples:
            return [self.name, "0", "-", "-", "-", self.target or "-", "not measured"]
        fmt = (lambda v: f"{v:.2f}") if self.unit == "s" else (lambda v: f"{v:.2f}{self.unit}")
        verdict = "-" if self.met is None else ("met" if self.met else "MISSED")
        return [
            self.name,
            str(len(self.samples)),
            fmt(min(self.samples)),
            fmt(statistics.median(self.samples)),
            fmt(max(self.samples)),
            self.target or "-",
            verdict,
        ]


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    sizes: list[tuple[str, str, int | None]] = field(default_factory=list)

    def add(
        self,
        name: str,
        samples: list[float],
        target: str = "",
        ok: Callable[[float], bool] | None = None,
        unit: str = "s",
    ) -> Row:
        met = ok(statistics.median(samples)) if ok and samples else None
        row = Row(name, samples, target, met, unit)
        self.rows.append(row)
        return row

    def add_ratio(self, name: str, samples: list[float], reference: float, limit: float) -> Row:
        """Each sample over `reference`, against at most `limit`."""
        return self.add(
            name,
            [v / reference for v in samples],
            f"<= {limit:.2f}",
            lambda v: v <= limit,
            unit="x",
        )

    def tables(self) -> str:
        """The timings and the image sizes as Markdown tables: the report's, and what the
        session prints (they read as well in a terminal)."""
        timing = _markdown_table(
            ("measurement", "runs", "min", "median", "max", "target", "result"),
            [row.cells() for row in self.rows],
        )
        sizes = _markdown_table(
            ("image", "tag", "size"),
            [
                (what, f"`{tag}`", f"{size / 1e6:.0f} MB" if size else "?")
                for what, tag, size in self.sizes
            ],
        )
        return f"## Timings\n\n{timing}\n\n## Image sizes\n\n{sizes}"


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p95 of 20 samples is the 19th smallest)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


# --- the benchmark -------------------------------------------------------------------------
def bench(
    runtime: Runtime, source: StackConfig, *, runs: int = 5, build_runs: int = 2, edits: int = 24
) -> Results:
    suffix = secrets.token_hex(3)
    workdir = checkout_copy(source.root, f"djstack-wf-bench-{suffix}-")
    shutil.copy2(source.root / "noxfile.py", workdir / "noxfile.py")
    overrides = isolated_overrides(
        source,
        f"djstack-wf-bench-{suffix}",
        APP_IMAGE=f"{BENCH_TAG}:dev",
        PROD_IMAGE=f"{BENCH_TAG}:prod",
    )
    if "CONTAINER_RUNTIME" not in source.values:
        overrides["CONTAINER_RUNTIME"] = runtime.name  # the sessions must use the same engine
    config = StackConfig.load(workdir, overrides=overrides)
    bench_run = Bench(runtime, config, {**os.environ, **overrides}, runs, build_runs, edits)
    runtime.log(f"bench: isolated stack {config.project} in {workdir}, image {BENCH_TAG}:*")
    try:
        return bench_run.run()
    finally:
        runtime.log(f"bench: removing {config.project}, its volumes and the {BENCH_TAG} tags")
        bench_run.stack.compose("down", capture=True, check=False, quiet=True)
        runtime.remove_volumes(config.volume_names())
        bench_run.remove_bare_postgres()
        for target in ("dev", "prod"):
            runtime.remove_image(f"{BENCH_TAG}:{target}")
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Bench:
    runtime: Runtime
    config: StackConfig
    env: dict[str, str]
    runs: int
    build_runs: int
    edits: int
    results: Results = field(default_factory=Results)

    def __post_init__(self) -> None:
        self.stack = Stack(self.runtime, self.config)
        self.log = self.runtime.log
        self.bare = f"{self.config.project}-bare-postgres"

    # --- steps ------------------------------------------------------------------------------
    def run(self) -> Results:
        r = self.results
        # Cold up: nothing built, no volumes; the cold build plus the first `up`.
        cold_build, cold_up = [], []
        for _ in range(self.build_runs):
            self.fresh_volumes()
            cold_build.append(self.build(cold=True))
            cold_up.append(cold_build[-1] + self.session("up"))
        warm_up, down = [], []
        self.session("up")
        for _ in range(self.runs):
            down.append(self.session("down"))
            warm_up.append(self.session("up"))
        up_when_up = [self.session("up") for _ in range(self.runs)]
        compose_stop, compose_start, engine_stop = self.lifecycle()
        nox_list = [self.session("-l") for _ in range(self.runs)]
        query = [
            timed(lambda: self.runtime.containers(self.config.project)) for _ in range(self.runs)
        ]
        bare, boot = self.bare_postgres(), self.django_boot()
        reference = statistics.median(bare) + statistics.median(boot)
        quick = 2 * (statistics.median(nox_list) + statistics.median(query))
        django = statistics.median(boot)
        r.add("cold up (cold build + first up)", cold_up)
        r.add(
            "warm up (built, volumes populated)",
            warm_up,
            f"<= 2.0 x (bare PG + Django boot) = {2 * reference:.2f}",
            lambda v: v <= 2 * reference,
        )
        r.add("bare PostgreSQL ready (warm volume)", bare)
        r.add("Django boot (manage.py check)", boot)
        r.add_ratio("warm up / (bare PG + Django boot)", warm_up, reference, 2.0)
        r.add("nox -l (nox's own start)", nox_list)
        r.add("one engine query (containers of the stack)", query)
        r.add(
            "up when already up",
            up_when_up,
            f"<= 2 x (nox -l + query) = {quick:.2f}",
            lambda v: v <= quick,
        )
        r.add("down", down, f"<= 2 x (nox -l + query) = {quick:.2f}", lambda v: v <= quick)
        r.add("engine stop of the three containers (down's floor)", engine_stop)
        r.add("compose stop (down without the engine bypass)", compose_stop)
        r.add("compose start (warm up's start without the bypass)", compose_start)
        reload = self.reload_latency()
        everything = [v for samples in reload.values() for v in samples]
        for kind, samples in reload.items():
            r.add(f"reload after an edit of {kind}", samples)
        r.add(
            f"reload p50 ({len(everything)} edits)",
            [percentile(everything, 0.5)],
            f"<= 1.3 x Django boot = {1.3 * django:.2f}",
            lambda v: v <= 1.3 * django,
        )
        r.add(
            f"reload p95 ({len(everything)} edits)",
            [percentile(everything, 0.95)],
            f"<= 2.0 x Django boot = {2 * django:.2f}",
            lambda v: v <= 2 * django,
        )
        r.add("idle app container, file events (CPU, % of one core)", self.idle_cpu(), unit="%")
        self.polling_rows()
        self.session("down")
        r.add("cold build (dev, no layer cache)", cold_build)
        code = [self.rebuild_after(self.edit_code, n) for n in range(self.build_runs)]
        r.add("rebuild after a code-only change", code)
        dependency = [self.rebuild_after(self.change_dependency, n) for n in range(self.build_runs)]
        cold = statistics.median(cold_build)
        r.add(
            "rebuild after a dependency change",
            dependency,
            f"<= 30% of cold build = {0.3 * cold:.1f}",
            lambda v: v <= 0.3 * cold,
        )
        r.add_ratio("dependency rebuild / cold build", dependency, cold, 0.3)
        self.image_sizes()
        self.production_load()
        return r

    def production_load(self, clients: int = 40, requests_per_client: int = 80) -> None:
        """The production-like stack (the prod image just built) under a bounded mixed load
        on loopback: reads and authenticated writes, one user and token per client."""
        production = ProdStack.for_checkout(self.runtime, self.config)
        try:
            production.up()
            tokens = api_tokens(production, clients)
            result = run_load(
                production.app_url, tokens, clients=clients, requests_per_client=requests_per_client
            )
        finally:
            production.down(volumes=True)
        what = f"{result.requests} mixed requests, {clients} clients"
        self.results.add(f"production load: requests/s ({what})", [result.per_second], unit="/s")
        self.results.add("production load: p99 latency", [result.p99_ms / 1000])
        self.results.add(
            "production load: errors", [float(len(result.errors))], "0", lambda v: v == 0, unit=""
        )

    def lifecycle(self) -> tuple[list[float], list[float], list[float]]:
        """Stopping and starting the same running containers through the compose tool, and
        the engine's stop alone (one call: what `down` runs after nox's own start)."""
        names = [c.name for c in self.stack.containers().values()]
        compose_stops, compose_starts, engine_stops = [], [], []
        for _ in range(self.runs):
            compose_stops.append(
                timed(lambda: self.stack.compose("stop", capture=True, quiet=True))
            )
            compose_starts.append(
                timed(lambda: self.stack.compose("start", capture=True, quiet=True))
            )
            self.stack.wait_ready(timeout=120)
            engine_stops.append(
                timed(lambda: self.runtime.engine_cmd("stop", *names, capture=True, quiet=True))
            )
            self.runtime.engine_cmd("start", *names, capture=True, quiet=True)
            self.stack.wait_ready(timeout=120)
        return compose_stops, compose_starts, engine_stops

    def session(self, name: str) -> float:
        """Run `nox -s <name>` (or `nox -l`) in the copy, as a developer would; time it."""
        noxfile = self.config.root / "noxfile.py"
        command = [
            sys.executable,
            "-m",
            "nox",
            "-f",
            str(noxfile),
            *([name] if name.startswith("-") else ["-s", name]),
        ]
        started = time.monotonic()
        result = subprocess.run(command, env=self.env, cwd=self.config.root, capture_output=True)
        seconds = time.monotonic() - started
        if result.returncode != 0:
            tail = result.stderr.decode(errors="replace").strip().splitlines()[-1:]
            raise StackError(f"bench: `nox -s {name}` failed: {' '.join(tail)}")
        return seconds

    def fresh_volumes(self) -> None:
        self.stack.compose("down", capture=True, check=False, quiet=True)
        self.runtime.remove_volumes(self.config.volume_names())

    def build(self, *, cold: bool = False, target: str = "dev") -> float:
        """`cold`: no layer is reused, and Podman's cache mounts start empty (buildah keeps
        them under TMPDIR); Docker's BuildKit keeps its package download cache."""
        tag = f"{BENCH_TAG}:{target}"
        self.log(f"bench: {'cold ' if cold else ''}build of {tag}")
        saved = dict(self.runtime.build_env)
        with tempfile.TemporaryDirectory(prefix="djstack-cold-build-") as empty:
            if cold:
                self.runtime.build_env["TMPDIR"] = empty
            try:
                return timed(
                    lambda: ensure_app_image(
                        self.runtime, self.config, force=True, target=target, tag=tag, no_cache=cold
                    )
                )
            finally:
                self.runtime.build_env.clear()
                self.runtime.build_env.update(saved)

    def rebuild_after(self, change: Callable[[int], None], number: int) -> float:
        change(number)
        return self.build()

    def edit_code(self, number: int) -> None:
        view = self.config.root / "src" / "core" / "views.py"
        view.write_text(view.read_text() + f"\n# bench: code-only change {number}\n")

    def change_dependency(self, number: int) -> None:
        """A real dependency change: `uv add` of a package the image does not have yet, which
        rewrites pyproject.toml and uv.lock. A token in the requirement makes the lock unlike
        any an earlier bench run built, so no cached layer can answer for it."""
        package = NEW_DEPENDENCIES[number % len(NEW_DEPENDENCIES)]
        token = secrets.randbelow(10**6)
        add_dependency(self.runtime, self.config, f"{package}>=0,!=0.0.{token}")

    def bare_postgres(self) -> list[float]:
        """A bare PostgreSQL container from a warm volume: `run` until it answers on its
        published port, probed as `up` probes the stack's (a startup packet, every 10 ms)."""
        values, image = self.config.values, self.config.values["POSTGRES_IMAGE"]
        volume, port = f"{self.bare}-data", free_port()

        def once() -> float:
            started = time.monotonic()
            self.runtime.engine_cmd(
                "run",
                "-d",
                "--name",
                self.bare,
                "-v",
                f"{volume}:/var/lib/postgresql/data",
                "-p",
                f"127.0.0.1:{port}:5432",
                "-e",
                f"POSTGRES_PASSWORD={values['POSTGRES_PASSWORD']}",
                image,
                capture=True,
                quiet=True,
            )
            while not postgres_answers("127.0.0.1", port, "postgres", "postgres")[0]:
                if time.monotonic() - started > 120:
                    raise StackError(
                        "bench: the bare PostgreSQL container did not answer within 120 s"
                    )
                time.sleep(0.01)
            seconds = time.monotonic() - started
            self.runtime.engine_cmd("rm", "-f", self.bare, capture=True, quiet=True)
            return seconds

        once()  # initialises the volume: the runs below start from a populated one
        return [once() for _ in range(self.runs)]

    def remove_bare_postgres(self) -> None:
        self.runtime.engine_cmd("rm", "-f", self.bare, capture=True, check=False, quiet=True)
        self.runtime.remove_volumes([f"{self.bare}-data"])

    def django_boot(self) -> list[float]:
        """Interpreter start, settings, apps, URLs and system checks, inside the app container."""
        script = (
            "s=$(date +%s%N); python3 manage.py check >/dev/null; "
            "e=$(date +%s%N); echo $(( (e - s) / 1000000 ))"
        )
        samples = []
        for _ in range(self.runs):
            result = self.stack.exec("app", "sh", "-c", script, capture=True, quiet=True)
            samples.append(int(result.stdout.decode().split()[-1]) / 1000)
        return samples

    def reload_latency(self) -> dict[str, list[float]]:
        """Save a file under the bind mount, time until the server answers with the new code:
        in turn a view (src/core/views.py), a model module (src/notes/models.py) and the
        URLconf (src/config/urls.py). Each holds a token the probe route returns."""
        files = {
            "a view": "src/core/views.py",
            "a model": "src/notes/models.py",
            "the URLconf": "src/config/urls.py",
        }
        originals = {kind: (self.config.root / path).read_text() for kind, path in files.items()}
        blocks = {  # each file's original text plus a block holding its token
            "a view": lambda token: (
                f"\n\nBENCH_VIEW_TOKEN = '{token}'  # nox -s bench\n\n\n"
                "def bench_probe(request, url_token=''):\n"
                "    from django.http import HttpResponse\n"
                "    from notes.models import BENCH_MODEL_TOKEN\n"
                "    return HttpResponse(f'{BENCH_VIEW_TOKEN} {BENCH_MODEL_TOKEN} {url_token}')\n"
            ),
            "a model": lambda token: f"\n\nBENCH_MODEL_TOKEN = '{token}'  # nox -s bench\n",
            "the URLconf": lambda token: (
                "\nfrom core.views import bench_probe as _bench_probe  # nox -s bench\n"
                f"urlpatterns.append(path('{PROBE_ROUTE}', _bench_probe, {{'url_token': '{token}'}}))\n"
            ),
        }
        tokens = {kind: "start" for kind in files}

        def save(kind: str) -> None:
            (self.config.root / files[kind]).write_text(
                originals[kind] + blocks[kind](tokens[kind])
            )

        url = f"{self.config.app_url}/{PROBE_ROUTE}"
        samples: dict[str, list[float]] = {kind: [] for kind in files}
        try:
            for kind in files:
                save(kind)
            self.served(url, " ".join(tokens.values()), 60)
            for number in range(self.edits):
                kind = list(files)[number % len(files)]
                tokens[kind] = f"{secrets.token_hex(6)}-{number}"
                started = time.monotonic()
                save(kind)
                self.served(url, " ".join(tokens.values()), 30)
                samples[kind].append(time.monotonic() - started)
        finally:
            for kind, text in originals.items():
                (self.config.root / files[kind]).write_text(text)
        return samples

    def polling_rows(self) -> None:
        """The app container made again with WATCHFILES_FORCE_POLLING=true, as `up` records
        it where no file events arrive: its idle CPU and its reload times."""
        key = "WATCHFILES_FORCE_POLLING"
        self.config.values[key] = "true"
        try:
            self.stack.compose(
                "up", "-d", "--no-deps", "--force-recreate", "app", capture=True, quiet=True
            )
            self.stack.wait_ready(timeout=float(self.config.values["UP_TIMEOUT"]))
            self.results.add(
                "idle app container, polling (CPU, % of one core)",
                self.idle_cpu(),
                "<= 3%",
                lambda v: v <= 3,
                unit="%",
            )
            everything = [v for samples in self.reload_latency().values() for v in samples]
            self.results.add(
                f"reload p50 with polling ({len(everything)} edits)",
                [percentile(everything, 0.5)],
                "<= 1.50",
                lambda v: v <= 1.5,
            )
        finally:
            self.config.values.pop(key)
            self.stack.compose("up", "-d", "--no-deps", "--force-recreate", "app", capture=True)
            self.stack.wait_ready(timeout=float(self.config.values["UP_TIMEOUT"]))

    def idle_cpu(self, seconds: float = 10, samples: int = 3) -> list[float]:
        """CPU the app container's processes use while nothing happens, in % of one core:
        their user + system ticks (/proc/PID/stat) over `seconds`, the reading process's own
        excluded."""
        script = (
            "import os, time\n"
            "def ticks():\n"
            "    total = 0\n"
            "    for pid in filter(str.isdigit, os.listdir('/proc')):\n"
            "        if int(pid) == os.getpid(): continue\n"
            "        try: fields = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()\n"
            "        except OSError: continue\n"
            "        total += int(fields[11]) + int(fields[12])\n"
            "    return total\n"
            "start, began = ticks(), time.monotonic()\n"
            f"time.sleep({seconds})\n"
            "used = (ticks() - start) / os.sysconf('SC_CLK_TCK')\n"
            "print(100 * used / (time.monotonic() - began))\n"
        )
        time.sleep(2)  # the server's start-up is over
        return [
            float(self.stack.exec("app", "python3", "-c", script, capture=True, quiet=True).stdout)
            for _ in range(samples)
        ]

    @staticmethod
    def served(url: str, expected: str, timeout: float) -> None:
        """Poll every 10 ms until the probe answers `expected`; a response cut off by the
        restarting server counts as no answer yet."""
        ok, seen, _ = poll(
            lambda: (
                (answer := http("GET", url))[0] == 200 and answer[1] == expected,
                f"{answer[0]} {answer[1][:80]}",
            ),
            timeout,
            interval=0.01,
        )
        if not ok:
            raise StackError(f"bench: {expected!r} not served after {timeout:g}s (last: {seen})")

    def image_sizes(self) -> None:
        self.build(target="prod")
        base = self.config.values["PYTHON_IMAGE"]
        for what, tag in (
            ("base (PYTHON_IMAGE)", base),
            ("dev target", f"{BENCH_TAG}:dev"),
            ("prod target", f"{BENCH_TAG}:prod"),
        ):
            size = self.runtime.engine_cmd(
                "image",
                "inspect",
                "--format",
                "{{.Size}}",
                tag,
                capture=True,
                check=False,
                quiet=True,
            ).stdout.strip()
            self.results.sizes.append((what, tag, int(size) if size.isdigit() else None))


# --- the report ----------------------------------------------------------------------------
def machine() -> dict[str, str]:
    cpu = _field("/proc/cpuinfo", "model name", ":") or platform.processor() or "?"
    memory = _field("/proc/meminfo", "MemTotal", ":")  # "16318480 kB"
    system = _field("/etc/os-release", "PRETTY_NAME", "=") or platform.system()
    return {
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{int(memory.split()[0]) / 1024 / 1024:.0f} GiB" if memory else "?",
        "OS": f"{system}, kernel {platform.release()}",
    }


def _field(path: str, wanted: str, separator: str) -> str | None:
    """The value of the first `wanted<separator>value` line of a text file, if it has one."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, found, value = line.partition(separator)
        if found and key.strip() == wanted:
            return value.strip().strip('"')
    return None


def runtime_versions(runtime: Runtime) -> str:
    engine = runtime.engine_cmd("--version", capture=True, check=False, quiet=True)
    compose = runtime.run([*runtime.compose_tool, "version"], capture=True, check=False, quiet=True)
    lines = [line for line in compose.stdout.decode().splitlines() if "version" in line.lower()]
    return f"{engine.stdout.decode().strip()}; {lines[0].strip() if lines else 'compose ?'}"


def markdown(results: Results, runtime: Runtime, *, runs: int, build_runs: int, edits: int) -> str:
    about = "\n".join(
        f"- {key}: {value}"
        for key, value in {
            **machine(),
            "runtime": runtime_versions(runtime),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }.items()
    )
    return f"""# Benchmarks

Written by `nox -s bench` (the latest run replaces this file). Times are in seconds, wall
clock, min / median / max over the runs shown; "result" compares the median with the target
from the issue. Run it again on your machine with `nox -s bench` (`-- --runs N --build-runs N`).

## Machine and runtime

{about}

{results.tables()}

## What is measured

Targets are ratios to what the same run measures, since machines differ.

- **cold up**: a cold build of the dev image, plus the first `nox -s up` on empty volumes
  (initdb, migrations, every service answering). **Cold build**: `--no-cache`, no layer is
  reused; Podman's cache mounts start empty too, Docker's BuildKit keeps its download
  cache. The base images count as given (pulled or, without a registry, the stand-ins).
- **warm up**: `nox -s down` (which stops the containers and keeps them) then `nox -s up`
  with the image built and the volumes populated, to every service answering on its
  published port (a PostgreSQL startup packet as `pg_isready` sends, Redis `PING`, the
  app's health endpoint with database and cache checked). The target is 2 x (bare
  PostgreSQL + Django boot).
- **bare PostgreSQL**: `run` of the PostgreSQL image alone on a populated volume until it
  answers on its published port (the same probe as `up`'s, every 10 ms). **Django boot**:
  `manage.py check` in the app container (interpreter, settings, apps, URLs, checks).
- **up when already up**, **down**: the Nox sessions, as typed (Nox's own start included);
  target 2 x (`nox -l` + one engine query listing the stack's containers).
- **compose stop / start**: the compose tool stopping and starting the same running
  containers. `down` and warm `up` call the engine once instead (src/devstack/stack.py);
  the difference between these rows and theirs is what that bypass saves. **Engine stop**:
  that one call alone (SIGTERM, each service's clean shutdown, the engine's clean-up): no
  `down` that stops the containers cleanly can take less.
- **reload**: a file under the bind mount is saved, then a probe route is polled every
  10 ms until it answers with the new code; in turn a view (`src/core/views.py`), a model
  module (`src/notes/models.py`) and the URLconf (`src/config/urls.py`); p50 / p95 over
  {edits} edits, against 1.3 x and 2.0 x the Django boot (a reload is one fresh boot).
- **polling**: the app container made again with `WATCHFILES_FORCE_POLLING=true` (what `up`
  records where edits raise no file events, docs/runtimes.md#file-events): the CPU its
  processes use while idle, over 10 s, three times (user + system time from `/proc`), against
  3 % of one core, and the reload p50 over the same edits, against 1.5 s. The same idle CPU
  with file events is the row above it.
- **rebuilds**: `build` of the dev image with the layer cache, after appending a comment
  to a source file (code only; day to day the bind mount makes even this unnecessary), and
  after `uv add` of a package the image does not have yet ({", ".join(NEW_DEPENDENCIES[:build_runs])}),
  which rewrites `pyproject.toml` and `uv.lock`, with a token in the requirement so that
  no layer of an earlier run can match: the sync step runs again on the cached seed layer
  and installs the new package (docs/configuration.md, "Why a seed").
- **production load**: the production-like stack (`nox -s prod`: gunicorn, settings.prod,
  the prod image just built) under 40 concurrent clients on loopback, 80 requests each, one
  in four an authenticated write (one user and API token per client), the rest reads:
  requests per second, the p99 latency and the errors (every request must get its status).
- Benchmarks run on a copy of the checkout with their own stack, volumes, ports and image
  tags ({BENCH_TAG}:dev/prod), all removed afterwards. Runs: {runs} (builds: {build_runs}).
"""


class _Options(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's documented hook: one line, no exit 2
        raise StackError(f"bench: {message}: use --runs N, --build-runs N, --edits N (N >= 1)")


def parse_args(args: list[str]) -> dict[str, int]:
    """`-- --runs N --build-runs N --edits N` (defaults 5, 2, 24)."""

    def count(text: str) -> int:  # argparse names it in "invalid count value: '0'"
        if not text.isdigit() or int(text) < 1:
            raise ValueError(text)
        return int(text)

    parser = _Options(prog="nox -s bench --", add_help=False, allow_abbrev=False)
    for flag, default in (("--runs", 5), ("--build-runs", 2), ("--edits", 24)):
        parser.add_argument(flag, type=count, default=default)
    options = vars(parser.parse_args(args))
    if options["edits"] < 20:
        raise StackError("bench: --edits must be at least 20 for a meaningful p95")
    return options


def write_report(results: Results, runtime: Runtime, path: Path, **options: int) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(markdown(results, runtime, **options))
    partial.replace(path)
