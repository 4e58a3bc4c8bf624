"""What hostile stack files cost `validate`: wall time and peak memory, each case in a fresh process.

Cases: prod.yaml for scale; the largest prod-shaped stack under the 1 MiB read cap; a 4 MB stack (over the
cap: refused unread); and the worst documents the limits allow (components/spec/yaml_source.py: 1 MiB,
100,000 values, as many keys, 32 levels): an alias bomb, the issue's nested merge keys, merged values that
multiply, values at the deepest level (the longest paths in the line map), and as many plain values and keys
as the limits allow (the most PyYAML has to compose).

Each case runs `load_stack` (what `inferfleet validate` runs) in a child process that has already imported
everything and loaded the catalog: once for the wall time and the growth of the peak resident set over the
call (Linux: VmHWM after resetting it through /proc/self/clear_refs), once under tracemalloc for the peak of
Python's allocations. Figures go into the README by hand; nothing here is asserted.
Run: .venv/bin/python -m benchmarks.bench_hostile_yaml
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import bench_validate_plan

ROOT = Path(__file__).resolve().parent.parent
PROD = ROOT / "stacks" / "prod.yaml"
MIB = 1024 * 1024


def prod_shaped(services: int) -> str:
    return bench_validate_plan.prod_shaped(services, "bench")


def largest_under_cap() -> tuple[str, int]:
    low, high = 1, 4000
    while low < high:
        middle = (low + high + 1) // 2
        if len(prod_shaped(middle).encode()) <= MIB:
            low = middle
        else:
            high = middle - 1
    return prod_shaped(low), low


STACK_HEAD = "environment: bench\n"


def alias_bomb() -> str:
    """A billion laughs: 10 aliases a level, 9 levels (10^10 values expanded)."""
    lines = ["lol0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"lol{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 10)]
    return STACK_HEAD + "tags:\n" + "".join(f"  {line}\n" for line in lines)


def nested_merges(depth: int = 10) -> str:
    """The issue's merge bomb: each level merges the one inside it 10 times."""
    node = "&l0 {" + ", ".join(f"k{i}: v" for i in range(10)) + "}"
    for level in range(1, depth + 1):
        node = f"&l{level} {{<<: [{node}, " + ", ".join([f"*l{level - 1}"] * 9) + "]}"
    return STACK_HEAD + "tags:\n  <<: " + node + "\n"


def merged_values() -> str:
    """Merged mappings whose values are aliases multiplying by 10 a level."""
    lines = ["m0: &m0 {" + ", ".join(f"k{i}: [a, b, c, d, e, f, g, h, i, j]" for i in range(10)) + "}"]
    lines += [f"m{n}: &m{n} {{<<: *m{n - 1}, more: [" + ", ".join([f"*m{n - 1}"] * 10) + "]}" for n in range(1, 8)]
    return STACK_HEAD + "tags:\n" + "".join(f"  {line}\n" for line in lines)


def deepest_values() -> str:
    """A mapping 27 levels deep holding 100 values, aliased until the document passes 100,000 values: paths
    of 31 parts (tags.copies.N.d0...d26.N), the longest the depth limit allows, as many as the values limit
    allows."""
    inner = "[" + ", ".join(["x"] * 100) + "]"
    for level in range(26, -1, -1):
        inner = f"{{d{level}: {inner}}}"
    return STACK_HEAD + f"tags:\n  deep: &deep {inner}\n  copies: [" + ", ".join(["*deep"] * 800) + "]\n"


def most_values() -> str:
    """99,990 plain values in one list (300 KB): the most values PyYAML composes before the limit refuses."""
    return STACK_HEAD + "tags: [" + ", ".join(["0"] * 99_990) + "]\n"


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if not number:
            return "k" + text


def most_keys() -> str:
    """A mapping of 99,990 distinct keys, each with a value, in just under 1 MiB: the most keys and values
    composed and converted."""
    return STACK_HEAD + "tags:\n" + "".join(f" {_base36(i)}: v\n" for i in range(99_990))


def wide_merge() -> str:
    """A 5,000-key mapping merged into 100 mappings: every merged key counts."""
    big = "{" + ", ".join(f"k{i}: 0" for i in range(5000)) + "}"
    return STACK_HEAD + f"big: &big {big}\nmany:\n" + "".join(f"  - <<: *big\n    n: {i}\n" for i in range(100))


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child(path: str, mode: str) -> None:
    """In a fresh process: import and load everything, then run one load_stack (or, for `parse`, only the
    YAML parse without the read cap) and report its wall time and memory."""
    import tracemalloc

    from components.catalog import load_catalog
    from components.spec import StackError
    from components.spec.yaml_source import YamlSyntaxError, parse_yaml
    from components.stack import load_stack

    catalog = load_catalog()
    text = Path(path).read_text(encoding="utf-8") if mode.startswith("parse") else ""
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak resident set (VmHWM) to the current one
    rss_before = _status_kib("VmRSS")
    if mode.endswith("memory"):
        tracemalloc.start()
    start = time.perf_counter()
    try:
        if mode.startswith("parse"):
            parse_yaml(text)
        else:
            load_stack(path, catalog)
        outcome = "valid"
    except (StackError, YamlSyntaxError) as error:
        first = error.problems[0] if isinstance(error, StackError) else error
        count = len(error.problems) if isinstance(error, StackError) else 1
        outcome = f"refused, {count} problem{'s' if count > 1 else ''}; line {first.line}: {first.message[:70]}"
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1] if mode.endswith("memory") else 0
    peak_rss = _status_kib("VmHWM") - rss_before
    print(json.dumps({"seconds": seconds, "rss_mib": peak_rss / 1024, "traced_mib": traced / MIB, "outcome": outcome}))


def measure(path: Path, mode: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_hostile_yaml", "--child", str(path), mode],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    largest, services = largest_under_cap()
    four_mb = prod_shaped(services * 4)
    cases = [
        ("prod.yaml", PROD.read_text(), "validate"),
        (f"prod-shaped, {services} services (largest under 1 MiB)", largest, "validate"),
        ("prod-shaped, 4 MB", four_mb, "validate"),
        ("prod-shaped, 4 MB, parsed past the cap", four_mb, "parse"),
        ("alias bomb (10^10 values expanded)", alias_bomb(), "validate"),
        ("nested merge keys (the issue's, 10 levels)", nested_merges(), "validate"),
        ("merged values multiplying", merged_values(), "validate"),
        ("100,000 values at the deepest level", deepest_values(), "validate"),
        ("99,990 values in one list", most_values(), "validate"),
        ("99,990 keys and values (1 MiB)", most_keys(), "validate"),
        ("5,000 keys merged 100 times", wide_merge(), "validate"),
    ]
    print(f"{'case':<48} {'size':>9} {'seconds':>8} {'peak RSS MiB':>13} {'traced MiB':>11}  outcome")
    with tempfile.TemporaryDirectory() as directory:
        for name, text, mode in cases:
            path = Path(directory) / "bench.yaml"
            path.write_text(text, encoding="utf-8")
            timed = measure(path, mode)
            traced = measure(path, mode + "-memory")
            size = len(text.encode())
            size_text = f"{size / MIB:.2f} MiB" if size >= 100_000 else f"{size / 1024:.1f} KB"
            print(
                f"{name:<48} {size_text:>9} {timed['seconds']:>8.3f} {timed['rss_mib']:>13.1f} "
                f"{traced['traced_mib']:>11.1f}  {timed['outcome']}"
            )
    print(
        "\nseconds: wall time of load_stack (what `inferfleet validate` runs) in a warm process; peak RSS: growth of "
        "the resident set over the call; traced: peak of Python's allocations (tracemalloc, a second run). "
        "'parsed past the cap' runs parse_yaml on the text directly, to show what the 1 MiB cap spares."
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
