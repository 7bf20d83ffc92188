"""Database snapshots and SQL export/import, kept outside the volumes so they survive `clean`.

A snapshot is `pg_dump --format=custom` of POSTGRES_DB, streamed out of the db container into
SNAPSHOT_DIR (default `.snapshots/` in the checkout, git-ignored) as `<name>.pgdump`, with
`<name>.json` beside it (when, which database and stack). Files are written under a
`.partial` name and renamed when complete.

Restore and import never leave a half-loaded database: they load into a new database, then
swap it in for POSTGRES_DB with two renames in one transaction, and drop the old one. They
refuse to replace a database that holds data unless `--yes` is given or a person confirms.
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from .config import StackConfig
from .errors import StackError
from .stack import Stack

SUFFIX = ".pgdump"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
# Filled by `migrate` alone: rows here are not data a restore could lose.
BOOKKEEPING_TABLES = ("django_migrations", "django_content_type", "auth_permission")
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20

Confirm = Callable[[str], bool]


@dataclass
class Snapshot:
    name: str
    path: Path
    created: datetime
    size: int
    database: str
    stack: str


def snapshot_dir(config: StackConfig) -> Path:
    configured = config.values.get("SNAPSHOT_DIR")
    path = Path(configured).expanduser() if configured else Path(".snapshots")
    return path if path.is_absolute() else config.root / path


def list_snapshots(config: StackConfig) -> list[Snapshot]:
    """The snapshots in SNAPSHOT_DIR, oldest first."""
    found = []
    for path in snapshot_dir(config).glob(f"*{SUFFIX}"):
        meta_path = path.with_suffix(".json")
        try:
            meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        except ValueError:
            meta = {}
        stat = path.stat()
        created = (
            datetime.fromisoformat(meta["created"])
            if "created" in meta
            else datetime.fromtimestamp(stat.st_mtime).astimezone()
        )
        found.append(
            Snapshot(
                name=path.name[: -len(SUFFIX)],
                path=path,
                created=created,
                size=stat.st_size,
                database=meta.get("database", "?"),
                stack=meta.get("stack", "?"),
            )
        )
    return sorted(found, key=lambda s: s.created)


def find(config: StackConfig, name: str) -> Snapshot:
    for snapshot in list_snapshots(config):
        if snapshot.name == name:
            return snapshot
    names = [s.name for s in list_snapshots(config)]
    known = f"; there are: {', '.join(names[-5:])}" if names else "; there are none yet"
    raise StackError(
        f"no snapshot named {name!r} in {snapshot_dir(config)}{known} "
        "(`nox -s snapshots` lists them)"
    )


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def snapshots_table(snapshots: Sequence[Snapshot]) -> str:
    from .workflow import table

    return table(
        ("name", "created", "size", "database", "stack"),
        [
            (
                s.name,
                s.created.strftime("%Y-%m-%d %H:%M:%S"),
                human_size(s.size),
                s.database,
                s.stack,
            )
            for s in snapshots
        ],
    )


# --- taking and exporting ----------------------------------------------------------------
def take(stack: Stack, name: str | None = None) -> Snapshot:
    """pg_dump (custom format) of the running database into SNAPSHOT_DIR/<name>.pgdump."""
    config, values = stack.config, stack.config.values
    created = datetime.now().astimezone()
    name = name or created.strftime("%Y%m%d-%H%M%S")
    if not NAME.fullmatch(name):
        raise StackError(
            f"snapshot name {name!r} is not valid: use letters, digits, '.', '_' "
            "and '-' (up to 80), starting with a letter or digit"
        )
    directory = snapshot_dir(config)
    path = directory / f"{name}{SUFFIX}"
    if path.exists():
        raise StackError(
            f"snapshot {name!r} already exists ({path}): choose another name, "
            "or delete that file first"
        )
    stack.require_running("db")
    directory.mkdir(parents=True, exist_ok=True)
    _dump(
        stack,
        ["pg_dump", "-U", values["POSTGRES_USER"], "-d", values["POSTGRES_DB"], "--format=custom"],
        path,
    )
    path.with_suffix(".json").write_text(
        json.dumps(
            {
                "name": name,
                "created": created.isoformat(),
                "database": values["POSTGRES_DB"],
                "stack": config.project,
                "format": "pg_dump custom (pg_restore reads it)",
            },
            indent=2,
        )
        + "\n"
    )
    return find(config, name)


def export_sql(stack: Stack, file: str | None = None) -> Path:
    """Plain SQL of the database, gzipped when the file name ends in .gz."""
    config, values = stack.config, stack.config.values
    if file:
        path = Path(file).expanduser().resolve()
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = snapshot_dir(config) / "exports" / f"{values['POSTGRES_DB']}-{stamp}.sql.gz"
    if not path.parent.is_dir() and file:
        raise StackError(f"cannot write {path}: directory {path.parent} does not exist")
    stack.require_running("db")
    path.parent.mkdir(parents=True, exist_ok=True)
    # No owners or grants: the file loads into any database, whoever owns it there.
    _dump(
        stack,
        [
            "pg_dump",
            "-U",
            values["POSTGRES_USER"],
            "-d",
            values["POSTGRES_DB"],
            "--no-owner",
            "--no-privileges",
        ],
        path,
        compress=path.name.endswith(".gz"),
    )
    return path


def _dump(stack: Stack, command: list[str], target: Path, *, compress: bool = False) -> None:
    partial = target.with_name(target.name + ".partial")
    try:
        with tempfile.TemporaryFile() as errors:
            with partial.open("wb") as out:
                process = stack.exec_stream(
                    "db",
                    *command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE if compress else out,
                    stderr=errors,
                )
                if compress:
                    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as packed:
                        shutil.copyfileobj(process.stdout, packed, CHUNK)
                code = process.wait()
            if code != 0 or partial.stat().st_size == 0:
                raise StackError(
                    f"{command[0]} failed with exit code {code} "
                    f"({_error_line(errors)}); nothing was written to {target}"
                )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


# --- restoring and importing -------------------------------------------------------------
def restore(stack: Stack, name: str, *, yes: bool, confirm: Confirm | None) -> bool:
    """Replace the database with a snapshot's contents; False when the person said no."""
    snapshot = find(stack.config, name)
    return _replace_from(
        stack,
        snapshot.path,
        f"restoring {name!r}",
        yes,
        confirm,
        rerun=f"nox -s restore -- {name} --yes",
        load=["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error"],
    )


def import_sql(stack: Stack, file: str, *, yes: bool, confirm: Confirm | None) -> bool:
    """Replace the database with a plain or gzipped SQL file; False when the person said no."""
    path = Path(file).expanduser()
    if not path.is_file():
        raise StackError(
            f"{file}: no such file; give a .sql or .sql.gz file (`nox -s db-export` makes one)"
        )
    return _replace_from(
        stack,
        path,
        f"importing {path.name}",
        yes,
        confirm,
        rerun=f"nox -s db-import -- {file} --yes",
        load=["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"],
    )


def _replace_from(
    stack: Stack,
    source: Path,
    action: str,
    yes: bool,
    confirm: Confirm | None,
    *,
    rerun: str,
    load: list[str],
) -> bool:
    """Load `source` with the `load` command into a new database and swap it in."""
    stack.require_running("db")
    if not _may_replace(stack, action, yes, confirm, rerun=rerun):
        return False
    user = stack.config.values["POSTGRES_USER"]
    _replace_database(
        stack,
        lambda database: _load(
            stack, [*load, "-U", user, "--single-transaction", "-d", database], source
        ),
    )
    return True


def tables_with_data(stack: Stack, database: str | None = None) -> list[str]:
    """Tables of the database that hold at least one row (migration bookkeeping aside)."""
    skipped = ", ".join(_literal(name) for name in BOOKKEEPING_TABLES)
    result = psql(
        stack,
        f"""
        SELECT CASE WHEN schemaname = 'public' THEN quote_ident(tablename)
                    ELSE format('%I.%I', schemaname, tablename) END
        FROM pg_tables
        WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
          AND NOT (schemaname = 'public' AND tablename IN ({skipped}))
          AND (xpath('/row/x/text()', query_to_xml(
                 format('SELECT EXISTS (SELECT 1 FROM %I.%I) AS x', schemaname, tablename),
                 false, true, '')))[1]::text = 'true'
        ORDER BY 1;""",
        database=database,
    )
    return [line for line in result.stdout.decode().splitlines() if line.strip()]


def psql(stack: Stack, sql: str, *, database: str | None = None, check: bool = True):
    values = stack.config.values
    result = stack.exec(
        "db",
        "psql",
        "-X",
        "-q",
        "-tA",
        "-v",
        "ON_ERROR_STOP=1",
        "-U",
        values["POSTGRES_USER"],
        "-d",
        database or values["POSTGRES_DB"],
        input=sql.encode(),
        capture=True,
        check=False,
        quiet=True,
        timeout=120,
        uninterrupted=True,  # a swap cut short would leave the database closed to connections
    )
    if check and result.returncode != 0:
        raise StackError(
            f"psql on database {database or values['POSTGRES_DB']} failed: "
            f"{_first_error(result.stderr.decode(errors='replace'))}"
        )
    return result


def _may_replace(
    stack: Stack, action: str, yes: bool, confirm: Confirm | None, *, rerun: str
) -> bool:
    if yes:
        return True
    tables = tables_with_data(stack)
    if not tables:
        return True
    database = stack.config.values["POSTGRES_DB"]
    shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
    if confirm is not None:
        return confirm(
            f"{action} replaces database {database!r}, which holds data ({shown}). Replace it?"
        )
    raise StackError(
        f"{action} would replace database {database!r}, which holds data ({shown}): "
        f"rerun with `{rerun}` to replace it (`nox -s snapshot` first keeps a copy)"
    )


def _replace_database(stack: Stack, load: Callable[[str], None]) -> None:
    """Load into a new database, then swap it in: the old data or the new, never half of it.
    Whatever ends it (an error, Ctrl-C), the tidy-up leaves only POSTGRES_DB, open again."""
    database = stack.config.values["POSTGRES_DB"]
    maintenance = "template1" if database == "postgres" else "postgres"
    token = secrets.token_hex(4)
    fresh, old = f"{database[:40]}_restoring_{token}", f"{database[:40]}_replaced_{token}"
    db, db_fresh, db_old = _ident(database), _ident(fresh), _ident(old)
    others = f"datname = {_literal(database)} AND pid <> pg_backend_pid()"
    swap = None
    try:
        psql(stack, f"CREATE DATABASE {db_fresh} TEMPLATE template0;", database=maintenance)
        load(fresh)
        swap = psql(
            stack,
            f"""
            ALTER DATABASE {db} WITH ALLOW_CONNECTIONS false;
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {others};
            DO $swap$ BEGIN
              FOR i IN 1..500 LOOP
                EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE {others});
                PERFORM pg_sleep(0.02);
                PERFORM pg_stat_clear_snapshot();  -- else the view stays as it was at the start
              END LOOP;
            END $swap$;
            BEGIN;
            ALTER DATABASE {db} RENAME TO {db_old};
            ALTER DATABASE {db_fresh} RENAME TO {db};
            COMMIT;""",
            database=maintenance,
            check=False,
        )
    finally:  # right whether the swap happened or not: only one of the two others exists
        tidy = psql(
            stack,
            f"ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true;\n"
            f"DROP DATABASE IF EXISTS {db_fresh} WITH (FORCE);\n"
            f"DROP DATABASE IF EXISTS {db_old} WITH (FORCE);",
            database=maintenance,
            check=False,
        )
        if tidy.returncode != 0:
            stack.log(
                f"WARNING: tidying up after the restore failed "
                f"({_first_error(tidy.stderr.decode(errors='replace'))}): see "
                f"`nox -s dbshell -- -d postgres -c '\\l'` for {fresh!r} or {old!r}"
            )
    if swap.returncode != 0:
        raise StackError(
            f"swapping in the restored database failed "
            f"({_first_error(swap.stderr.decode(errors='replace'))}); "
            f"database {database!r} is unchanged"
        )
    closed = swap.stdout.decode().split()
    if closed and closed[0] not in ("", "0"):
        stack.log(f"closed {closed[0]} connection(s) to {database!r}; the app reconnects by itself")


@contextmanager
def _open_source(path: Path):
    with path.open("rb") as probe:
        packed = probe.read(2) == GZIP_MAGIC
    with gzip.open(path, "rb") if packed else path.open("rb") as stream:
        yield stream


def _load(stack: Stack, command: list[str], source: Path) -> None:
    """Stream a file (gunzipped on the fly) into a command's stdin in the db container."""
    with tempfile.TemporaryFile() as errors, _open_source(source) as stream:
        process = stack.exec_stream(
            "db", *command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors
        )
        try:
            shutil.copyfileobj(stream, process.stdin, CHUNK)
        except BrokenPipeError:
            pass  # the command stopped reading: its exit code and message say why
        except (OSError, EOFError) as exc:  # e.g. a truncated .gz
            process.kill()
            process.wait()
            raise StackError(f"cannot read {source}: {exc}") from None
        finally:
            try:
                process.stdin.close()
            except BrokenPipeError:
                pass
        code = process.wait()
        if code != 0:
            database = stack.config.values["POSTGRES_DB"]
            raise StackError(
                f"loading {source.name} failed ({_error_line(errors)}); "
                f"database {database!r} is unchanged"
            )


# --- small helpers -------------------------------------------------------------------------
def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "ERROR" in line or "error:" in line or "FATAL" in line:
            return line
    return lines[-1] if lines else "no message"


def _error_line(errors: IO[bytes]) -> str:
    errors.seek(0)
    return _first_error(errors.read().decode(errors="replace"))
