"""Progress output: bars in a terminal, one plain line per epoch / chunk otherwise.

When stdout and stderr are both terminals, training shows Lightning's rich bar, labelled
``<stage> epoch k/N`` (1-based, so the last of 3 epochs reads ``3/3``). Otherwise (a log file,
CI, ``nohup``) the bars are replaced by one flushed line per epoch::

    [merc] refine epoch 3/40: loss 1.2043, ce 1.1020, dev weighted F1 55.12 (elapsed 12.3 s)

and long loops such as ``merc explain`` and feature extraction print one line per chunk
(:func:`chunk_lines`). The Lightning pieces (bars, per-epoch lines) are in
:mod:`merc.training.progress`; this module imports nothing heavy.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def interactive() -> bool:
    """True when both stdout and stderr are terminals (bars are readable there only)."""
    try:
        return sys.stdout.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def emit(line: str) -> None:
    """Print a progress line (global-zero process only), flushed."""
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        print(line, flush=True)


def chunk_lines(items: Iterable[T], label: str, total: int, lines: int = 20) -> Iterator[T]:
    """Yield ``items``; when not in a terminal, print about ``lines`` progress lines on the way."""
    if interactive() or total <= 0:
        yield from items
        return
    every = max(1, math.ceil(total / lines))
    start = time.perf_counter()
    for index, item in enumerate(items, start=1):
        yield item
        if index % every == 0 or index == total:
            emit(f"[merc] {label}: chunk {index}/{total} (elapsed {time.perf_counter() - start:.1f} s)")
