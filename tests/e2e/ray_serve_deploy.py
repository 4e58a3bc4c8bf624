"""Deploy a Serve config (the `serveConfigV2` document a RayService carries) on a running Ray cluster and wait
until every application is RUNNING. Run by .venv-vllm's python, not pytest:

    .venv-vllm/bin/python tests/e2e/ray_serve_deploy.py RAY_ADDRESS CONFIG.json [TIMEOUT_S]

KubeRay hands `serveConfigV2` to Serve's REST API, which validates it as `ServeDeploySchema` and has the
controller deploy it; `serve run CONFIG` does the same from a driver (ray/serve/scripts.py: `serve_start` with
the config's `http_options`, then `deploy_apps`). This script is that path plus the wait, so a deploy failure
(an import error in a replica, an engine that cannot start) exits 1 with Serve's own message instead of a test
polling a port that never answers.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import ray
from ray import serve
from ray.serve._private import api as serve_api
from ray.serve._private.constants import SERVE_NAMESPACE
from ray.serve.schema import ApplicationStatus, ServeDeploySchema

POLL_S = 1.0


def deploy(address: str, config: ServeDeploySchema, timeout_s: float) -> None:
    """Deploy every application of the config; raise when one fails or the time runs out."""
    ray.init(address=address, namespace=SERVE_NAMESPACE, logging_level="WARNING")
    client = serve_api.serve_start(http_options=config.http_options.dict())
    client.deploy_apps(config, _blocking=False)
    names = [app.name for app in config.applications]
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = serve.status().applications
        states = {name: statuses[name].status if name in statuses else "MISSING" for name in names}
        failed = {name: statuses[name].message for name, state in states.items()
                  if state == ApplicationStatus.DEPLOY_FAILED}
        if failed:
            raise RuntimeError(f"deploy failed: {failed}")
        if all(state == ApplicationStatus.RUNNING for state in states.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"applications not RUNNING after {timeout_s} s: {states}")
        time.sleep(POLL_S)


def main() -> int:
    address, config_path = sys.argv[1], Path(sys.argv[2])
    timeout_s = float(sys.argv[3]) if len(sys.argv) > 3 else 600.0
    config = ServeDeploySchema.parse_obj(json.loads(config_path.read_text()))
    try:
        deploy(address, config, timeout_s)
    except (RuntimeError, TimeoutError) as error:
        print(error, file=sys.stderr)
        return 1
    print("RUNNING: " + ", ".join(app.name for app in config.applications))
    return 0


if __name__ == "__main__":
    sys.exit(main())
