"""SIGINT/SIGTERM: stop at a safe point, say where the last checkpoint is, exit 128 + signal.

The CLI installs :func:`install_handlers`. Outside training a signal raises
:class:`Interrupted` at once (every output is written atomically, so nothing half-written is
left). Inside ``Trainer.fit`` the handler only records the signal and
:class:`~merc.training.callbacks.StopOnSignal` raises at the next batch boundary, so a
checkpoint being written is never cut short; the last complete ``last.ckpt`` stays for
``--resume``. A second signal stops at once. The CLI prints one line (where the checkpoint is,
the exact command to resume) and exits 130 (SIGINT) or 143 (SIGTERM), so
``merc train ... && next-step`` does not go on.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Any

_state: dict[str, Any] = {"deferred": 0, "received": None}


class Interrupted(Exception):
    """The run was stopped by a signal.

    Attributes:
        signum: the signal number.
        checkpoint: the resumable checkpoint left behind, if any.
    """

    def __init__(self, signum: int, checkpoint: Path | None = None) -> None:
        self.signum = signum
        self.checkpoint = checkpoint
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _handler(signum: int, frame: FrameType | None) -> None:
    again = _state["received"] is not None
    _state["received"] = signum
    if _state["deferred"] == 0 or again:  # a second signal does not wait for the safe point
        _state["received"] = None
        raise Interrupted(signum)


def install_handlers() -> None:
    """Route SIGINT and SIGTERM to :func:`_handler` (main thread only; a no-op elsewhere)."""
    _state["received"] = None
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _handler)
    except ValueError:  # not the main thread
        pass


def pending() -> int | None:
    """The signal received and not yet acted on, if any."""
    return _state["received"]


def enter_safe_section() -> None:
    """From now on, signals wait for :func:`raise_if_signalled` (``Trainer.fit`` starts)."""
    _state["deferred"] += 1


def leave_safe_section() -> None:
    """End of a section opened by :func:`enter_safe_section`."""
    _state["deferred"] = max(0, _state["deferred"] - 1)


def raise_if_signalled() -> None:
    """Raise :class:`Interrupted` for a pending signal (and clear it: a later run starts clean)."""
    signum = _state["received"]
    if signum is not None:
        _state["received"] = None
        raise Interrupted(signum)
