"""`manage.py test` runs the project's pytest suite, as `nox -s tests` does: Django's own
runner finds no tests in tests/app and reports "NO TESTS RAN" as a success.

pytest runs in a process of its own: this one has already set Django up with the settings
`manage.py` was given, and the suite needs settings.test (the --ds of pyproject.toml)."""

import argparse
import subprocess
import sys

from django.conf import settings


class PytestRunner:
    """A TEST_RUNNER as Django's docs define one ("Defining a test runner")."""

    def __init__(
        self,
        verbosity: int = 1,
        failfast: bool = False,
        test_name_patterns: list[str] | None = None,
        **options: object,
    ) -> None:
        self.verbosity, self.failfast, self.patterns = verbosity, failfast, test_name_patterns

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The options of Django's own runner that pytest has too."""
        parser.add_argument("--failfast", action="store_true", help="Stop at the first failure.")
        parser.add_argument(
            "-k",
            action="append",
            dest="test_name_patterns",
            help="Only tests whose name matches (pytest's -k; several are or-ed).",
        )

    def run_tests(self, test_labels: list[str], **kwargs: object) -> int:
        """Labels go to pytest, relative to the project's root (/app in the container): a
        file, a directory, or one test (tests/app/test_health.py::test_the_cache_really_is_redis)."""
        flags = {0: ["-q"], 1: []}.get(self.verbosity, ["-v"])
        flags += ["-x"] if self.failfast else []
        flags += ["-k", " or ".join(self.patterns)] if self.patterns else []
        command = [sys.executable, "-m", "pytest", *flags, *test_labels]
        return subprocess.run(command, cwd=settings.BASE_DIR).returncode
