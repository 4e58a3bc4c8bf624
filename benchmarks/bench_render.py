"""How long `inferfleet render` takes (the program under mocks, without writing files) for prod.yaml
and for generated specs of many services. Target: prod under 3 s on 2 cores, linear in services."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.bench_validate_plan import PROD, generated_stack
from components.catalog import load_catalog
from components.render import render
from components.stack import load_stack


def median_seconds(path: Path, repeats: int) -> tuple[float, int]:
    catalog = load_catalog()
    source = load_stack(path, catalog)
    times, count = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = len(render(source, catalog).resources)
        times.append(time.perf_counter() - start)
    return statistics.median(times), count


def main() -> None:
    rows = [("prod.yaml (3 services)", 3, *median_seconds(PROD, 5))]
    with tempfile.TemporaryDirectory() as directory:
        for services in (50, 200):
            rows.append((f"generated, {services} services", services, *median_seconds(generated_stack(services, Path(directory)), 3)))
    print(f"{'stack':<28} {'services':>8} {'resources':>9} {'render s':>9}")
    for name, services, seconds, count in rows:
        print(f"{name:<28} {services:>8} {count:>9} {seconds:>9.2f}")


if __name__ == "__main__":
    main()
