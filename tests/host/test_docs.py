"""The reference tables in docs/ against what they describe: compose.yaml's variables and
volumes, and the sessions `nox -l` lists. Prose is checked where a table cannot be."""

import re
import subprocess

import pytest
import yaml
from conftest import ROOT, nox_command

from devstack.production import ProdStack
from devstack.stack import Stack

CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())  # anchors and merges resolved
NOT_IN_EXAMPLE = {"DJSTACK_CONFIG"}  # nox sets it on every run: not yours to set


def strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return [node] if isinstance(node, str) else []


def interpolated(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))


COMPOSE_VARIABLES = {name for text in strings(COMPOSE["services"]) for name in interpolated(text)}


def section(text: str, heading: str) -> str:
    """From the heading to the next one of the same level or higher."""
    level = heading.split(" ")[0]
    start = text.index(f"\n{heading}\n")
    ends = [m.start() for m in re.finditer(rf"\n#{{1,{len(level)}}} ", text[start + 1 :])]
    return text[start : start + 1 + ends[0]] if ends else text[start:]


def variable_rows(text: str) -> dict[str, list[str]]:
    """`| \\`NAME\\`[, \\`OTHER\\`] | cell | ... |` rows: each name with the row's other cells."""
    rows = {}
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        first, *cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", first):
            rows[name] = cells
    return rows


VARIABLES = section(CONFIGURATION, "## Variables")
NOT_PASSED = section(VARIABLES, "### Read in the container, not passed by compose.yaml")


def test_every_variable_compose_yaml_reads_is_documented_among_those_it_passes():
    rows = variable_rows(VARIABLES.replace(NOT_PASSED, ""))
    assert sorted(COMPOSE_VARIABLES - set(rows)) == []


def test_no_variable_documented_as_read_by_compose_is_missing_from_it():
    """The 'used by' column says compose only for what compose.yaml interpolates."""
    rows = variable_rows(VARIABLES.replace(NOT_PASSED, ""))
    claimed = {name for name, cells in rows.items() if len(cells) == 3 and "compose" in cells[1]}
    assert sorted(claimed - COMPOSE_VARIABLES) == []


def test_the_variables_said_not_to_be_passed_by_compose_yaml_are_not():
    rows = variable_rows(NOT_PASSED)
    assert rows, "the section has no rows: has it been renamed?"
    assert sorted(set(rows) & COMPOSE_VARIABLES) == []
    # Set in compose.yaml to a fixed value or from another variable: the row says which.
    for service in COMPOSE["services"].values():
        environment = service.get("environment") or {}
        for name in set(rows) & set(environment):
            source = interpolated(str(environment[name])) or {"compose.yaml"}
            assert any(s in " ".join(rows[name]) for s in source), (name, environment[name])


def test_env_example_names_every_variable_compose_yaml_reads():
    example = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", example, re.M))
    assert sorted(COMPOSE_VARIABLES - NOT_IN_EXAMPLE - named) == []


def volumes_of(services) -> dict[str, str]:
    """Named volumes (not bind mounts) by the service that mounts them."""
    found = {}
    for service in services:
        for mount in COMPOSE["services"][service].get("volumes", []):
            source = mount.split(":", 1)[0]
            if source in COMPOSE["volumes"]:
                found[source] = service
    return found


def test_the_volume_tables_and_lists_name_the_volumes_compose_yaml_mounts():
    volumes = section(CONFIGURATION, "## Volumes")
    table = dict(re.findall(r"^\| `<STACK_NAME>_([\w-]+)` \| (\w+) \|", volumes, re.M))
    assert table == volumes_of(Stack.services)
    prod = set(volumes_of([*ProdStack.services, "migrate"]))
    for name, text in (("configuration.md", volumes), ("how-to.md", _doc("how-to.md"))):
        listed = set(re.findall(r"`<STACK_NAME>-prod_([\w-]+)`", text))
        listed |= {v for v in re.findall(r"`<STACK_NAME>-prod_db-data`, `_([\w-]+)`", text)}
        assert listed == prod, name


def _doc(name: str) -> str:
    return (ROOT / "docs" / name).read_text()


@pytest.fixture(scope="module")
def sessions():
    """`nox -l`: {name: selected by `nox -s check`}."""
    listing = subprocess.run(
        nox_command("-s", "check", "-l"), capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    return {name: mark == "*" for mark, name in re.findall(r"^([*-]) (\S+) -> ", listing, re.M)}


def test_the_how_to_table_of_checks_names_real_sessions_and_what_check_runs(sessions):
    table = dict(re.findall(r"^\| `nox -s (\S+)` \| (.*) \|$", _doc("how-to.md"), re.M))
    assert set(table) <= set(sessions)
    runs = {name for name, selected in sessions.items() if selected} - {"check"}
    assert set(re.findall(r"`([\w-]+)`", table["check"])) == runs
