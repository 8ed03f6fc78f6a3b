"""A progress bar on stderr for long commands (stdout may be a protocol or a pipe)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30


class ProgressBar:
    """Redraws one line in place on a terminal; elsewhere prints a line every tenth of the way."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self._last_tenth = -1
        self._tty = self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        elapsed = max(time.monotonic() - self.started, 1e-9)
        filled = int(WIDTH * fraction)
        line = (
            f"{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total} "
            f"{fraction:4.0%} {done / elapsed:.0f}/s"
        )
        if self._tty:
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
        elif int(fraction * 10) != self._last_tenth or done >= total:
            self._last_tenth = int(fraction * 10)
            self.stream.write(line + "\n")
        self.stream.flush()
