"""The command-line options of the pinned vLLM release, so `validate` can refuse an `engineArgs` key
vLLM does not know without vLLM installed. The data file is generated from vLLM's own parser
(`make vllm-options`, in .venv-vllm) and an e2e test fails when it no longer matches that parser."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Literal

DATA_FILE = Path(__file__).parent / "data" / "vllm_options.json"
Arity = Literal["flag", "one", "many"]


@functools.cache
def _data() -> dict:
    return json.loads(DATA_FILE.read_text())


def vllm_options() -> dict[str, Arity]:
    """`--flag` -> how many values it takes."""
    return _data()["options"]


def vllm_options_version() -> str:
    """The vLLM release the options were read from (a test keeps it equal to the pinned one)."""
    return _data()["vllmVersion"]


def data_file_text(version: str, arities: dict[str, Arity]) -> str:
    """The data file for the parser's option arities: long options only, sorted."""
    options = {flag: arities[flag] for flag in sorted(arities) if flag.startswith("--")}
    return json.dumps({"vllmVersion": version, "options": options}, indent=1) + "\n"


if __name__ == "__main__":
    sys.stdout.write(data_file_text(sys.argv[1], json.load(sys.stdin)))
