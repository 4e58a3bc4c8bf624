"""How long `validate + plan` takes for prod.yaml and for generated specs of many services.

Prints a table of median wall times (in-process, catalog already loaded) and the cold time of a
whole `inferfleet plan` process. Run with `make bench`; figures go into the README by hand.
Target: prod under 1 s on 2 cores, time linear in the number of services.
"""

from __future__ import annotations

import copy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from components.catalog import load_catalog
from components.planner import plan_stack
from components.stack import load_stack

ROOT = Path(__file__).resolve().parent.parent
PROD = ROOT / "stacks" / "prod.yaml"


def prod_shaped(services: int, environment: str) -> str:
    """prod.yaml with its services repeated (renamed) until there are `services` of them."""
    data = yaml.safe_load(PROD.read_text())
    templates = data["services"]
    data["services"] = []
    for index in range(services):
        service = copy.deepcopy(templates[index % len(templates)])
        service["name"] = f"{service['name']}-{index}"
        data["services"].append(service)
    data["environment"] = environment
    return yaml.safe_dump(data, sort_keys=False)


def generated_stack(services: int, directory: Path) -> Path:
    path = directory / f"gen{services}.yaml"
    path.write_text(prod_shaped(services, f"gen{services}"))
    return path


def median_seconds(path: Path, repeats: int) -> float:
    catalog = load_catalog()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        source = load_stack(path, catalog)
        plan_stack(source.spec, catalog)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cold_cli_seconds(path: Path, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "components.cli", "plan", str(path)], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    load_catalog()
    rows = [("prod.yaml (3 services)", 3, median_seconds(PROD, 20))]
    with tempfile.TemporaryDirectory() as directory:
        for count in (50, 100, 200, 400):
            path = generated_stack(count, Path(directory))
            rows.append((f"generated, {count} services", count, median_seconds(path, 5)))
    print(f"{'stack':<28} {'services':>8} {'validate+plan ms':>17} {'ms per service':>15}")
    for name, count, seconds in rows:
        print(f"{name:<28} {count:>8} {seconds * 1000:>17.1f} {seconds * 1000 / count:>15.2f}")
    print(f"\ncold `inferfleet plan stacks/prod.yaml` process: {cold_cli_seconds(PROD) * 1000:.0f} ms (median of 3)")


if __name__ == "__main__":
    main()
