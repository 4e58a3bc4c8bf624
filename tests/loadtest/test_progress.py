"""The progress bar: drawn only when enabled, and a readable line."""

from __future__ import annotations

import io

from components.loadtest.progress import Progress


def test_bar_counts_requests_and_failures() -> None:
    bar = Progress("concurrency 4", total=4, stream=io.StringIO(), enabled=True)
    bar.advance(True)
    bar.advance(False)
    line = bar.line(bar._start + 1.5)
    assert line == "concurrency 4 [###############...............] 2/4 1 failed 1.5s"


def test_disabled_bar_writes_nothing() -> None:
    stream = io.StringIO()
    bar = Progress("x", total=2, stream=stream, enabled=False)
    bar.advance(True)
    bar.advance(True)
    bar.close()
    assert stream.getvalue() == ""


def test_enabled_bar_ends_its_line() -> None:
    stream = io.StringIO()
    bar = Progress("x", total=1, stream=stream, enabled=True)
    bar.advance(True)
    bar.close()
    text = stream.getvalue()
    assert text.startswith("\rx [##############################] 1/1 ") and text.endswith("s\n")
