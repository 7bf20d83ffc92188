"""The build context Docker receives is filtered by .containerignore, as Podman's is."""

import io
import tarfile
from pathlib import Path

from devstack.context import context_files, context_tar

ROOT = Path(__file__).resolve().parents[2]


def test_repository_context_holds_only_what_the_image_needs():
    files = context_files(ROOT, ROOT / ".containerignore")
    assert {"pyproject.toml", "uv.lock", "src/manage.py", "src/notes/models.py",
            "settings/base.py", "tests/app/conftest.py"} <= set(files)
    leaked = [f for f in files if f.startswith((".git/", ".nox/", "src/devstack/", "tests/host/",
                                                 "docs/", ".env")) or "__pycache__" in f]
    assert leaked == []


def test_patterns_follow_docker_semantics(tmp_path):
    for name in ("keep/a.py", "keep/sub/b.py", "keep/sub/__pycache__/b.pyc", "drop/c.py",
                 "keep/secret.env", "top.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / ".containerignore").write_text("*\n!keep/\n**/__pycache__/\nkeep/*.env\n")
    assert context_files(tmp_path, tmp_path / ".containerignore") == ["keep/a.py", "keep/sub/b.py"]


def test_context_tar_carries_the_containerfile_and_keeps_it_out_of_copies(tmp_path):
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    (tmp_path / "app.py").write_text("x")
    (tmp_path / ".containerignore").write_text("*\n!app.py\n")
    with tarfile.open(fileobj=io.BytesIO(context_tar(tmp_path, tmp_path / "Containerfile"))) as tar:
        assert sorted(tar.getnames()) == [".dockerignore", "Containerfile", "app.py"]
        ignored = tar.extractfile(".dockerignore").read().decode().split()
    assert ignored == ["Containerfile", ".dockerignore"]


def test_context_stream_is_recognised_as_an_archive_from_its_first_block(tmp_path):
    """Docker's client reads 512 bytes to tell a tar from a Dockerfile: no PAX header first."""
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    (tmp_path / "a.py").write_text("x")
    data = context_tar(tmp_path, tmp_path / "Containerfile")
    assert data[257:262] == b"ustar"
    assert data[156:157] == b"0"  # a regular file, not an extended header ('x', 'g', 'L')
