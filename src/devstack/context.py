"""The build context as a tar stream, filtered by .containerignore.

Podman reads .containerignore itself; Docker reads only .dockerignore. Sending Docker the
same filtered context keeps one ignore file for both (and .git, .env, .nox out of builds).
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from pathlib import Path


def _regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def read_patterns(ignore_file: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) pairs, in file order, as Docker and Podman read them."""
    rules = []
    if ignore_file.is_file():
        for line in ignore_file.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            rules.append((negated, _regex(line.lstrip("!").strip("/"))))
    return rules


def is_ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """The last rule matching the path or one of its parent folders decides."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negated, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


def context_files(root: Path, ignore_file: Path) -> list[str]:
    rules = read_patterns(ignore_file)
    files = []
    for folder, subfolders, names in os.walk(root):
        base = Path(folder).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        # Skip ignored folders (.git, .nox, ...) unless a "!" rule may take something back.
        subfolders[:] = [name for name in subfolders
                         if not is_ignored(prefix + name, rules)
                         or any(negated and regex.pattern.startswith(re.escape(prefix + name))
                                for negated, regex in rules)]
        files += [prefix + name for name in names if not is_ignored(prefix + name, rules)]
    return sorted(files)


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = int(info.mtime)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def context_tar(root: Path, containerfile: Path) -> bytes:
    """The context, plus the Containerfile, which the builder reads from the stream, and a
    .dockerignore naming both, so that `COPY . /app/` leaves them out as buildah does."""
    buffer = io.BytesIO()
    names = set(context_files(root, root / ".containerignore"))
    containerfile_name = containerfile.relative_to(root).as_posix()
    names.add(containerfile_name)
    ignore = f"{containerfile_name}\n.dockerignore\n".encode()
    # GNU format with whole-second times: Docker's client sniffs the first 512 bytes to tell
    # an archive from a Dockerfile, and a PAX header (Python's default) does not fit there.
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(names):
            tar.add(root / name, arcname=name, recursive=False, filter=_plain)
        info = tarfile.TarInfo(".dockerignore")
        info.size, info.mode = len(ignore), 0o644
        tar.addfile(info, io.BytesIO(ignore))
    return buffer.getvalue()
