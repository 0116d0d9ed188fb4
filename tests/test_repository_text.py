"""The repository stands on its own: no file cites a specification or a folder outside it.

Every text file git knows (tracked, or new and not ignored) is scanned for citations of the old outside
specification and for paths into a ``shared`` folder beside the repository; docs/design.md is the design
reference the code cites instead.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Spelled in pieces so that this file does not match itself (nor a plain grep for the words).
_OLD = "spec".upper()
FORBIDDEN = (_OLD + ".md", _OLD + " §", "../" + "shared")


def _repository_files() -> list[str]:
    try:
        proc = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        proc = None
    if proc is None or proc.returncode != 0:
        pytest.skip("not a git checkout (the file list comes from git)")
    return sorted(f for f in proc.stdout.splitlines() if (REPO / f).is_file())


def _offences(files: list[str], root: Path = REPO) -> dict[str, list[str]]:
    """``{file: ["line N: text", ...]}`` for the files with a forbidden citation (binary files skipped)."""
    found: dict[str, list[str]] = {}
    for rel in files:
        data = (root / rel).read_bytes()
        if b"\0" in data:
            continue
        text = data.decode("utf-8", errors="replace")
        if not any(p in text for p in FORBIDDEN):
            continue
        found[rel] = [f"line {n}: {line.strip()[:120]}" for n, line in enumerate(text.splitlines(), 1)
                      if any(p in line for p in FORBIDDEN)]
    return found


def _report(found: dict[str, list[str]]) -> str:
    return "\n".join(f"{f}:\n  " + "\n  ".join(lines) for f, lines in sorted(found.items()))


def test_no_file_cites_an_outside_specification():
    files = [f for f in _repository_files() if f != "README.md"]
    assert len(files) > 50
    found = _offences(files)
    assert not found, (f"files citing {' / '.join(FORBIDDEN)} (cite docs/design.md §N instead):\n"
                       + _report(found))


def test_readme_cites_no_outside_specification():
    """README.md on its own, so that a failure names it and its lines separately from the rest."""
    files = [f for f in _repository_files() if f == "README.md"]
    found = _offences(files)
    assert not found, "README.md still cites the outside specification:\n" + _report(found)


def test_the_scan_finds_citations(tmp_path):
    (tmp_path / "a.md").write_text("see " + FORBIDDEN[1] + "3\n")
    (tmp_path / "b.py").write_text("# " + FORBIDDEN[2] + "/X\n")
    (tmp_path / "c.txt").write_text("fine\n")
    (tmp_path / "d.bin").write_bytes(b"\0" + FORBIDDEN[0].encode())
    found = _offences(["a.md", "b.py", "c.txt", "d.bin"], root=tmp_path)
    assert sorted(found) == ["a.md", "b.py"] and found["a.md"][0].startswith("line 1:")
