"""Snapshots, restore, SQL export/import against a real, isolated PostgreSQL (and the app).

One stack for the module (conftest.isolated_stack), its snapshots in a temporary SNAPSHOT_DIR.
The tests run in order: each leaves the database as the next one expects.
"""

import gzip
import json

import pytest
from conftest import ctrl_c, nox, start

from devstack import snapshots, workflow
from devstack.errors import StackError
from devstack.net import http

SYSTEM_DATABASES = {"postgres", "template0", "template1"}


def titles(stack) -> list[str]:
    """The titles of the notes the running app serves, sorted."""
    status, body = http("GET", f"{stack.config.app_url}/api/v1/notes/?limit=100")
    assert status == 200, body
    return sorted(note["title"] for note in json.loads(body)["results"])


def add_note(stack, title: str) -> None:
    status, body = http("POST", f"{stack.config.app_url}/api/v1/notes/", {"title": title})
    assert status == 201, body


def databases(stack) -> set[str]:
    return set(snapshots.psql(stack, "SELECT datname FROM pg_database").stdout.decode().split())


def test_a_fresh_database_holds_no_data_to_lose(isolated_stack):
    assert snapshots.tables_with_data(isolated_stack) == []  # migrations alone are not data
    snapshots.take(isolated_stack, "empty")


def test_snapshot_change_restore_gives_back_the_old_data(isolated_stack):
    stack = isolated_stack
    add_note(stack, "one")
    add_note(stack, "two")
    taken = snapshots.take(stack, "two-notes")
    assert taken.path == snapshots.snapshot_dir(stack.config) / "two-notes.pgdump"
    assert taken.path.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
    add_note(stack, "three")
    snapshots.psql(stack, "UPDATE notes_note SET title = 'changed' WHERE title = 'one'")
    assert titles(stack) == ["changed", "three", "two"]

    assert snapshots.restore(stack, "two-notes", yes=True, confirm=None)
    assert titles(stack) == ["one", "two"]  # served by the running app, which reconnected
    assert databases(stack) - SYSTEM_DATABASES <= {"app", "test_app"}  # nothing left over


def test_restore_without_yes_refuses_when_data_would_be_lost(isolated_stack):
    stack = isolated_stack
    add_note(stack, "unsaved")
    with pytest.raises(StackError) as error:
        snapshots.restore(stack, "empty", yes=False, confirm=None)
    assert str(error.value) == (
        "restoring 'empty' would replace database 'app', which holds data (notes_note): rerun "
        "with `nox -s restore -- empty --yes` to replace it (`nox -s snapshot` first keeps a copy)"
    )
    assert titles(stack) == ["one", "two", "unsaved"]
    result = nox(stack, "-s", "restore", "--", "empty")  # the session, without a terminal
    assert result.returncode != 0 and "holds data (notes_note)" in result.stderr
    assert titles(stack) == ["one", "two", "unsaved"]


def test_restore_asks_a_person_and_respects_no(isolated_stack):
    stack = isolated_stack
    questions = []
    assert not snapshots.restore(
        stack, "empty", yes=False, confirm=lambda q: questions.append(q) or False
    )
    assert "holds data (notes_note)" in questions[0]
    assert titles(stack) == ["one", "two", "unsaved"]
    assert snapshots.restore(stack, "empty", yes=False, confirm=lambda q: True)
    assert titles(stack) == []


def test_restore_into_an_empty_database_needs_no_confirmation(isolated_stack):
    result = nox(isolated_stack, "-s", "restore", "--", "two-notes")
    assert result.returncode == 0, result.stderr
    assert titles(isolated_stack) == ["one", "two"]


def test_a_broken_snapshot_leaves_the_database_as_it_was(isolated_stack):
    stack = isolated_stack
    good = snapshots.find(stack.config, "two-notes").path.read_bytes()
    broken = snapshots.snapshot_dir(stack.config) / "broken.pgdump"
    broken.write_bytes(good[: len(good) * 2 // 3])  # cut off in the middle of the data
    add_note(stack, "after")
    unchanged = r"^loading broken.pgdump failed \(.*\); database 'app' is unchanged$"
    with pytest.raises(StackError, match=unchanged):
        snapshots.restore(stack, "broken", yes=True, confirm=None)
    assert titles(stack) == ["after", "one", "two"]
    assert databases(stack) - SYSTEM_DATABASES <= {"app", "test_app"}


def test_ctrl_c_anywhere_in_a_restore_leaves_the_old_data_or_the_new_and_nothing_else(
    isolated_stack,
):
    """Ctrl-C as a terminal sends it (SIGINT to the session's process group) at moments spread
    over `nox -s restore`: the app serves the notes from before or the snapshot's, and no
    half-made database is left. Ctrl-C during the CREATE or the swap once left
    `app_restoring_*` and `app_replaced_*` databases behind."""
    stack = isolated_stack
    kept = snapshots.take(stack, "before-ctrl-c")
    restored = ["one", "two"]  # the two-notes snapshot
    for delay in [0.25 * step for step in range(12)]:  # 0-2.75 s into the session
        if titles(stack) == restored:
            add_note(stack, f"after {delay:.2f}s")
        before = titles(stack)
        output = ctrl_c(stack, "-s", "restore", "--", "two-notes", "--yes", after=delay)
        assert "Traceback" not in output, output
        assert databases(stack) - SYSTEM_DATABASES <= {"app", "test_app"}, output
        assert titles(stack) in (before, restored), output
    assert snapshots.restore(stack, "before-ctrl-c", yes=True, confirm=None)
    for path in (kept.path, kept.path.with_suffix(".json")):  # the later tests list the others
        path.unlink()


def test_snapshots_session_lists_name_date_size(isolated_stack):
    result = nox(isolated_stack, "-s", "snapshots")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "created", "size", "database", "stack"]
    names = [line.split()[0] for line in lines[2:]]
    assert names == ["empty", "two-notes", "broken"]
    assert isolated_stack.config.project in lines[2]


def test_snapshot_names_are_checked(isolated_stack):
    with pytest.raises(StackError, match=r"^snapshot 'two-notes' already exists"):
        snapshots.take(isolated_stack, "two-notes")
    with pytest.raises(StackError, match=r"^snapshot name '../up' is not valid"):
        snapshots.take(isolated_stack, "../up")
    listed = r"^no snapshot named 'nope' in .*; there are: empty, two-notes, broken \("
    with pytest.raises(StackError, match=listed):
        snapshots.restore(isolated_stack, "nope", yes=True, confirm=None)


@pytest.mark.parametrize("name", ["dump.sql", "dump.sql.gz"])
def test_export_then_import_round_trips(isolated_stack, tmp_path, name):
    stack = isolated_stack
    before = titles(stack)
    path = snapshots.export_sql(stack, str(tmp_path / name))
    text = (gzip.open(path) if name.endswith(".gz") else path.open("rb")).read().decode()
    assert "CREATE TABLE public.notes_note" in text and "OWNER TO" not in text
    add_note(stack, "not in the export")
    refused = r"^importing .* would replace database 'app', which holds data \(notes_note\)"
    with pytest.raises(StackError, match=refused):
        snapshots.import_sql(stack, str(path), yes=False, confirm=None)
    assert snapshots.import_sql(stack, str(path), yes=True, confirm=None)
    assert titles(stack) == before


def test_a_failing_sql_file_leaves_the_database_as_it_was(isolated_stack, tmp_path):
    stack = isolated_stack
    before = titles(stack)
    bad = tmp_path / "bad.sql.gz"
    bad.write_bytes(gzip.compress(b"CREATE TABLE half (i int);\nINSERT INTO nowhere VALUES (1);\n"))
    with pytest.raises(StackError, match=r'relation "nowhere" does not exist.*unchanged'):
        snapshots.import_sql(stack, str(bad), yes=True, confirm=None)
    assert titles(stack) == before
    assert databases(stack) - SYSTEM_DATABASES <= {"app", "test_app"}


def test_db_export_session_writes_gzip_by_default(isolated_stack):
    result = nox(isolated_stack, "-s", "db-export")
    assert result.returncode == 0, result.stderr
    exports = list((snapshots.snapshot_dir(isolated_stack.config) / "exports").glob("app-*.sql.gz"))
    assert len(exports) == 1 and b"notes_note" in gzip.decompress(exports[0].read_bytes())


def test_snapshots_survive_clean_and_restore_into_the_new_database(isolated_stack):
    stack = isolated_stack
    workflow.clean(stack, yes=True, confirm=None)
    assert not any(stack.runtime.volume_exists(v) for v in stack.config.volume_names())
    assert snapshots.find(stack.config, "two-notes").size > 0
    start(stack)  # new, empty volumes: the app migrates on start
    assert titles(stack) == []
    assert snapshots.restore(stack, "two-notes", yes=False, confirm=None)  # nothing to lose
    assert titles(stack) == ["one", "two"]
