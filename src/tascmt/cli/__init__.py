"""``tascmt`` command line: one sub-command per pipeline stage, each a thin wrapper over a Python function.

Every sub-command lives in its own module here with two functions, ``add_parser(subparsers)`` and
``run(args) -> int``. Heavy imports (torch) happen inside ``run`` so that ``tascmt --help`` is instant.
User-facing errors (:class:`tascmt.errors.TascmtError`) and operating-system errors (a full disk, a
read-only or missing folder: ``OSError``) are printed as one line without a traceback and give exit status
2. Ctrl-C gives 130; a training stopped by SIGTERM/SIGINT saves ``last/`` and exits with 143/130.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from tascmt._version import __version__
from tascmt.errors import TascmtError

# Sub-commands (each a module under tascmt.cli of the same name), in pipeline order.
COMMANDS: tuple[str, ...] = (
    "synth", "verify", "prepare", "train", "evaluate", "experiment", "predict", "benchmark", "demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tascmt",
        description="Joint slice interpolation and segmentation of CT and MRI (TASC-SwinMT).",
    )
    parser.add_argument("--version", action="version", version=f"tascmt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        try:
            mod = importlib.import_module(f"tascmt.cli.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"tascmt.cli.{module}":
                raise
            continue  # sub-command not built yet
        p = mod.add_parser(sub)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    # OpenMP threads that spin while waiting make torch 10-40x slower whenever another process shares
    # the cores (measured on the 2-core machines); passive waiting costs little on an idle machine.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    try:
        return int(args._run(args) or 0)
    except TascmtError as err:
        print(f"tascmt {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a read-only or missing folder, a permission: one line, no traceback
        print(f"tascmt {args.command}: error: {os_error_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C; training stopped by SIGTERM/SIGINT carries its own status
        detail = str(err) or "interrupted"
        print(f"tascmt {args.command}: {detail}", file=sys.stderr)
        return int(getattr(err, "exit_code", 130))


def os_error_message(err: OSError) -> str:
    """One line for an operating-system error: the file(s), the system's reason and, for a full disk, what
    to do."""
    import errno

    reason = err.strerror or " ".join(str(err).split()) or type(err).__name__
    names = [str(n) for n in (err.filename, err.filename2) if n is not None]
    text = f"{' → '.join(names)}: {reason}" if names else reason
    if err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG):
        text += " (the disk or the file-size limit is full; free some space or write elsewhere)"
    return text


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
