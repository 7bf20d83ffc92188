"""Tests of the host-side tooling (src/devstack), run by `nox -s tooling` on the host."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
