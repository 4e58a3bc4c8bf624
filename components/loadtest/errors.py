"""The one exception the load-test commands raise for a user-facing failure."""

from __future__ import annotations


class LoadTestError(Exception):
    """A failure worth one line to the user (unreachable server, bad prompt file, ...).

    The CLI prints its message and exits non-zero; anything else escaping is a bug, reported as an
    internal error. Keeping the two apart is what lets the CLI promise no tracebacks.
    """
