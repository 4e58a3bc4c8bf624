"""Check vLLM server argument vectors with the real parser of the pinned vLLM release.

Run with .venv-vllm's python (tests call it through `vllm_cpu.parse_with_real_vllm`):

    echo '[["--model", "/models/m", "--tensor-parallel-size", "8"]]' | .venv-vllm/bin/python check_vllm_args.py

stdin: a JSON list; each item is an argument vector (list of strings) or
{"args": [...], "hf_config": {...}}. stdout: a JSON list with one {"ok", "error", "stage"} per
item, in order. `--options` instead prints every option string of the parser with its arity.

Each vector goes as far as vLLM's own validation goes without a GPU or weights, in the order the
server applies it (vllm.entrypoints.launchers.api_server.entry.main and build_async_engine_client):

1. parse: FlexibleArgumentParser + cli_args.make_arg_parser (the `vllm serve` parser);
2. serve-args: cli_args.validate_parsed_serve_args;
3. engine-args: AsyncEngineArgs.from_cli_args (the engine arguments' own checks);
4. engine-config, only with hf_config: AsyncEngineArgs.create_engine_config with that
   config.json standing in for the model directory: the full VllmConfig validation.

--model (and --tokenizer) point at a temporary directory from stage 3 on: the real path is the
pod's volume, and vLLM offline insists that a local model path exists.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn

# vLLM reads these at import time: nothing can be fetched from a hub here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")


class ParseError(Exception):
    """argparse's error, raised instead of printing usage and exiting."""


def main() -> None:
    # vLLM logs to stdout; keep the real stdout for the JSON answer alone.
    answer = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    if sys.argv[1:] == ["--options"]:
        result: Any = option_arities()
    elif not sys.argv[1:]:
        result = [check(item) for item in json.load(sys.stdin)]
    else:
        sys.exit(f"usage: {Path(sys.argv[0]).name} [--options] < vectors.json")
    json.dump(result, answer)
    answer.write("\n")
    answer.close()


def make_parser() -> Any:
    """The OpenAI server's parser, failing with an exception instead of exiting."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    class RaisingParser(FlexibleArgumentParser):
        def error(self, message: str) -> NoReturn:
            raise ParseError(message)

    return make_arg_parser(RaisingParser(prog="vllm serve"))


def check(item: list[str] | dict[str, Any]) -> dict[str, Any]:
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.entrypoints.launchers.cli_args import validate_parsed_serve_args
    from vllm.usage.usage_lib import UsageContext

    args, hf_config = (item, None) if isinstance(item, list) else (item["args"], item.get("hf_config"))
    stage = "parse"
    try:
        namespace = make_parser().parse_args(args)
        if namespace.model_tag is not None:  # `vllm serve MODEL` puts the tag in --model
            namespace.model = namespace.model_tag
        stage = "serve-args"
        validate_parsed_serve_args(namespace)
        with tempfile.TemporaryDirectory() as model_dir:
            # The model path is the pod's mount, absent here; offline, vLLM wants it to exist.
            namespace.model = model_dir
            if namespace.tokenizer is not None:
                namespace.tokenizer = model_dir
            stage = "engine-args"
            engine_args = AsyncEngineArgs.from_cli_args(namespace)
            if hf_config is not None:
                stage = "engine-config"
                Path(model_dir, "config.json").write_text(json.dumps(hf_config))
                engine_args.create_engine_config(usage_context=UsageContext.OPENAI_API_SERVER)
    except (Exception, SystemExit) as error:  # SystemExit: some vLLM checks exit instead of raising
        return {"ok": False, "error": f"{type(error).__name__}: {error}", "stage": stage}
    return {"ok": True, "error": None, "stage": stage}


def option_arities() -> dict[str, str]:
    """Option string -> 'flag' (no value), 'one' or 'many' values, for every parser option."""
    arities: dict[str, str] = {}
    for action in make_parser()._actions:
        nargs = action.nargs
        arity = "flag" if nargs == 0 else "many" if nargs in ("+", "*") or (isinstance(nargs, int) and nargs > 1) else "one"
        for option in action.option_strings:
            arities[option] = arity
    return arities


if __name__ == "__main__":
    main()
