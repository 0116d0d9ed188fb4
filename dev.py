#!/usr/bin/env python3
"""Project launcher: creates (or reuses) the project's virtual environment, then runs a job in it.

    python3 dev.py demo [ARGS...]   # the end-to-end demo on the real-data default (MNI152 template)
    python3 dev.py test [ARGS...]   # the default test suite (pytest, slow tests deselected)
    python3 dev.py lint             # ruff
    python3 dev.py tascmt ARGS...   # any tascmt sub-command inside the environment

Only the Python standard library is used here, so this works on a machine with nothing but Python >= 3.10
and pip. The environment lives in ``.venv/`` next to this file (override with ``TASCMT_VENV``). torch is
installed as ``torch==2.13.0`` *before* the package: an open torch requirement would pull a multi-GB CUDA
build, while 2.13.0 resolves to a local CPU build on the project's machines.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("TASCMT_VENV", ROOT / ".venv"))
TORCH_PIN = "torch==2.13.0"


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _stamp() -> str:
    """Hash of everything that decides the environment's contents."""
    h = hashlib.sha256(TORCH_PIN.encode())
    h.update((ROOT / "pyproject.toml").read_bytes())
    return h.hexdigest()[:16]


def _run(cmd: list[str | os.PathLike]) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def ensure_env() -> Path:
    """Create the venv and install torch + the package (editable, with dev extras) unless up to date."""
    py = _venv_python()
    stamp_file = VENV / ".tascmt-stamp"
    if py.exists() and stamp_file.exists() and stamp_file.read_text().strip() == _stamp():
        return py
    if not py.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    _run([*pip, TORCH_PIN])
    _run([*pip, "-e", f"{ROOT}[dev]"])
    stamp_file.write_text(_stamp() + "\n")
    return py


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    job, rest = argv[0], argv[1:]
    py = ensure_env()
    env = dict(os.environ)
    if job == "demo":
        cmd = [py, "-m", "tascmt", "demo", *rest]
    elif job == "test":
        cmd = [py, "-m", "pytest", "-n", "2", "--dist", "loadfile", *rest]
    elif job == "lint":
        cmd = [py, "-m", "ruff", "check", "src", "tests", "benchmarks", "dev.py", *rest]
    elif job == "tascmt":
        cmd = [py, "-m", "tascmt", *rest]
    elif job == "setup":
        return 0
    else:
        print(f"unknown job {job!r}; expected one of: demo, test, lint, tascmt, setup", file=sys.stderr)
        return 2
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
