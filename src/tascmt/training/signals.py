"""Pre-emption: SIGTERM or SIGINT during training finishes the current step, saves ``last/`` and exits.

While :class:`StopSignals` is active (``Trainer.fit``), the first SIGTERM or SIGINT only records the signal;
the training loop checks it before every optimiser step, saves ``last/`` (not ``best/``: no validation pass,
so that the save fits in a scheduler's grace period) and ``fit`` raises :class:`TrainingInterrupted`, which
the command line turns into exit status 128 + signal (143 for SIGTERM, 130 for SIGINT). ``tascmt train
--resume RUN`` then continues exactly where the run stopped. A second SIGINT (Ctrl-C pressed twice) stops at
once with a plain ``KeyboardInterrupt`` (``last/`` is then the previous save); a second SIGTERM is ignored.

Under DDP (``torchrun`` forwards SIGTERM and SIGINT to every worker) each rank records the signal and the
per-step stop check takes the maximum over the ranks, so every rank stops after the same step even when the
signal reached only some of them; saving ``last/`` is collective (the RNG states of every rank are
gathered, rank 0 writes, then all ranks meet at a barrier) and every rank then exits with the same status.
Handlers are installed only in the main thread (Python delivers signals there); elsewhere ``fit`` keeps the
process's handlers. With DataLoader workers a terminal Ctrl-C also reaches the workers, which exit; the
loop then fails on its next batch instead of saving — send SIGTERM to the main process (what schedulers do).
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

#: The stop reason the training loop reports when a signal asked it to stop.
SIGNAL_STOP = "signal"

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal after saving ``last/``; ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopSignals:
    """Context manager: while active, SIGTERM/SIGINT set :attr:`signum` instead of ending the process."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            if signum == signal.SIGINT:  # pressed twice: stop now
                raise KeyboardInterrupt
            return
        self.signum = signum
        note = (f"\n{signal_name(signum)} received: stopping after the current step and saving last/ "
                "(press Ctrl-C again to stop at once)\n")
        try:  # os.write, not print: a handler may run while the main thread is inside print
            os.write(2, note.encode())
        except OSError:
            pass

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                if signal.getsignal(sig) is signal.SIG_IGN:  # e.g. SIGINT under nohup: keep ignoring it
                    continue
                try:
                    self._previous[sig] = signal.signal(sig, self._handle)
                except (ValueError, OSError):  # not allowed here (e.g. an embedded interpreter)
                    continue
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            try:
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
            except (ValueError, OSError):
                pass
        self._previous.clear()
