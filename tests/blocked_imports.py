"""Run Python code in a subprocess where some libraries cannot be imported.

The GPU machines and slim installs lack the imaging and medical libraries; ``PRELUDE`` installs a
``sys.meta_path`` finder that raises ``ImportError`` for them (whether or not they are installed here), so a
test can check that code paths which must not need them really do not.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLOCKED = ("SimpleITK", "nilearn", "pydicom", "nibabel", "monai", "thop")

PRELUDE = f"""
import importlib.abc, sys
_BLOCKED = {BLOCKED!r}
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _BLOCKED:
            raise ImportError(f"{{name}} is blocked in this test", name=name)
        return None
sys.meta_path.insert(0, _Block())
"""


def run_blocked(code: str, timeout: float = 120, args: list[str] | None = None) -> subprocess.CompletedProcess:
    """``python -c PRELUDE + code [args]`` from the repository root with ``src`` on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), str(REPO), env.get("PYTHONPATH", ""))
                                        if p)
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(key, None)
    return subprocess.run([sys.executable, "-c", PRELUDE + code, *(args or [])], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
