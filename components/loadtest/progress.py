"""A one-line progress bar on stderr for `inferfleet bench`.

Only for people watching: it draws nothing when stderr is not a terminal (CI logs, pipes) or when
the output is JSON for a program, and redraws at most ten times a second, so a fast run does not
spend its time printing.
"""

from __future__ import annotations

import time
from typing import TextIO

WIDTH = 30
MIN_REDRAW_S = 0.1


class Progress:
    """`advance()` once per finished request; `close()` ends the line."""

    def __init__(self, label: str, total: int, stream: TextIO, enabled: bool) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.failed = 0
        self._stream = stream
        self._enabled = enabled
        self._drawn_at = 0.0
        self._start = time.monotonic()

    def advance(self, ok: bool) -> None:
        """Count one finished request (failures are shown separately)."""
        self.done += 1
        self.failed += 0 if ok else 1
        now = time.monotonic()
        if self._enabled and (now - self._drawn_at >= MIN_REDRAW_S or self.done == self.total):
            self._drawn_at = now
            self._draw(now)

    def line(self, now: float) -> str:
        """The bar as text: label, bar, done/total, errors, elapsed seconds."""
        filled = WIDTH * self.done // self.total if self.total else WIDTH
        bar = "#" * filled + "." * (WIDTH - filled)
        errors = f" {self.failed} failed" if self.failed else ""
        return f"{self.label} [{bar}] {self.done}/{self.total}{errors} {now - self._start:.1f}s"

    def close(self) -> None:
        """Draw the final state and end the line, so the report starts on a fresh one."""
        if self._enabled:
            self._draw(time.monotonic())
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self, now: float) -> None:
        self._stream.write("\r" + self.line(now))
        self._stream.flush()
