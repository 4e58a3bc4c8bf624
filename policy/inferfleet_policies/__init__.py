"""inferfleet's policies, importable without starting the pack's analyzer server.

`policy/__main__.py` builds the PolicyPack from ALL_POLICIES; `inferfleet render` and the tests call
the same objects' `validate` in-process. Relative imports only: the pack imports this package as
`inferfleet_policies` (from policy/), the project (an editable install puts policy/ on the path) by the same name."""

from __future__ import annotations

from . import correctness, cost, reliability, security
from .levels import LEVELS

ALL_POLICIES = [*security.POLICIES, *reliability.POLICIES, *cost.POLICIES, *correctness.POLICIES]

_names = [policy.name for policy in ALL_POLICIES]
if sorted(_names) != sorted(LEVELS) or len(set(_names)) != len(_names):
    raise RuntimeError("every policy needs exactly one row in levels.LEVELS")
