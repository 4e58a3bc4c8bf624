"""Import paths for the Ray Serve image's tests, run from the repository root with the main venv:

    .venv/bin/python -m pytest serving_images/ray-serve/tests

`inferfleet_serve.retrieval` is pure Python and imported here directly; the Serve deployments run in
.venv-vllm's Ray workers (tests/e2e/ray_cluster.py starts them), which import `inferfleet_serve` and this
folder's `echo_llm` from the PYTHONPATH the cluster is started with.
"""

from __future__ import annotations

import sys
from pathlib import Path

IMAGE_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = IMAGE_DIR.parents[1]
for path in (IMAGE_DIR, REPO_ROOT / "tests", REPO_ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
