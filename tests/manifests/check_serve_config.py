"""Checks serveConfigV2 documents with the pinned Ray's own code; run by .venv-vllm's python, not pytest.

stdin: a JSON object {label: serveConfigV2 YAML text}. stdout: a JSON object {label: [error, ...]}, an
empty list for a valid document. Exit 0 when every document is valid, 1 otherwise.

What is checked, all from the installed Ray release (scripts/vllm_cpu_venv.sh pins it to the manifests'):
- `ray.serve.schema.ServeDeploySchema`: the document KubeRay sends to Serve's REST API.
- Keys Ray would silently ignore: Ray's pydantic schemas drop unknown fields, so a misspelt option
  would deploy and do nothing. Every key must be a field of its schema.
- Each deployment's `autoscaling_config` with `ray.serve.config.AutoscalingConfig` (bounds, targets).
- The args of `ray.serve.llm:build_openai_app`: LLMServingArgs, LLMConfig and ModelLoadingConfig field
  names, read from the installed Ray source (they import only beside the vLLM release that Ray pairs with),
  `deployment_config` as deployment options and `accelerator_type` among Ray's accelerator names.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import DeploymentSchema, RayActorOptionsSchema, ServeApplicationSchema, ServeDeploySchema
from ray.util.accelerators import accelerators

LLM_BUILDER = "ray.serve.llm:build_openai_app"
LLM_SOURCES = {
    "LLMServingArgs": "llm/_internal/serve/core/ingress/builder.py",
    "LLMConfig": "llm/_internal/serve/core/configs/llm_config.py",
    "ModelLoadingConfig": "llm/_internal/serve/core/configs/llm_config.py",
}
"""Where Ray 2.54 defines the LLM config models, relative to the ray package."""


def _ray_root() -> Path:
    spec = importlib.util.find_spec("ray")
    assert spec is not None and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0])


def _class_fields(path: Path, name: str) -> set[str]:
    """Public annotated attributes of a pydantic model class, read from its source without importing it."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == name:
            return {
                item.target.id
                for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and not item.target.id.startswith("_")
            }
    raise LookupError(f"class {name} not found in {path}")


def llm_fields() -> dict[str, set[str]]:
    root = _ray_root()
    return {name: _class_fields(root / relative, name) for name, relative in LLM_SOURCES.items()}


def _unknown(where: str, value: Any, fields: set[str]) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: expected a mapping, got {type(value).__name__}"]
    return [f"{where}.{key}: not a field Ray reads" for key in value if key not in fields]


def _autoscaling_errors(where: str, deployment: dict[str, Any]) -> list[str]:
    config = deployment.get("autoscaling_config")
    if config is None:
        return []
    errors = _unknown(f"{where}.autoscaling_config", config, set(AutoscalingConfig.__fields__))
    try:
        AutoscalingConfig(**config)
    except Exception as error:  # pydantic's ValidationError, or a TypeError on a wrong shape
        errors.append(f"{where}.autoscaling_config: {error}")
    return errors


def _deployment_errors(where: str, deployment: dict[str, Any]) -> list[str]:
    errors = _unknown(where, deployment, set(DeploymentSchema.__fields__))
    if isinstance(deployment, dict):
        if "ray_actor_options" in deployment:
            options = deployment["ray_actor_options"]
            errors += _unknown(f"{where}.ray_actor_options", options, set(RayActorOptionsSchema.__fields__))
        errors += _autoscaling_errors(where, deployment)
    return errors


def _llm_config_errors(where: str, config: Any, fields: dict[str, set[str]]) -> list[str]:
    errors = _unknown(where, config, fields["LLMConfig"])
    if not isinstance(config, dict):
        return errors
    loading = config.get("model_loading_config")
    if loading is None:
        errors.append(f"{where}.model_loading_config: required")
    else:
        errors += _unknown(f"{where}.model_loading_config", loading, fields["ModelLoadingConfig"])
        if isinstance(loading, dict) and "model_id" not in loading:
            errors.append(f"{where}.model_loading_config.model_id: required")
    if "deployment_config" in config:
        errors += _deployment_errors(f"{where}.deployment_config", config["deployment_config"])
    accelerator = config.get("accelerator_type")
    known = {value for name, value in vars(accelerators).items() if name.isupper() and isinstance(value, str)}
    if accelerator is not None and accelerator not in known:
        errors.append(f"{where}.accelerator_type: {accelerator!r} is not one of Ray's accelerator types")
    return errors


def _application_errors(index: int, app: dict[str, Any], fields: dict[str, set[str]]) -> list[str]:
    where = f"applications.{index}"
    errors = _unknown(where, app, set(ServeApplicationSchema.__fields__))
    for d, deployment in enumerate(app.get("deployments") or []):
        errors += _deployment_errors(f"{where}.deployments.{d}", deployment)
    if app.get("import_path") == LLM_BUILDER:
        args = app.get("args") or {}
        errors += _unknown(f"{where}.args", args, fields["LLMServingArgs"])
        for c, config in enumerate(args.get("llm_configs") or []):
            errors += _llm_config_errors(f"{where}.args.llm_configs.{c}", config, fields)
    return errors


def check(text: str, fields: dict[str, set[str]]) -> list[str]:
    """Every problem Ray would raise, or silently ignore, in one serveConfigV2 document."""
    try:
        document = yaml.safe_load(text)
        ServeDeploySchema.parse_obj(document)
    except Exception as error:  # YAML or schema: report it, do not crash the batch
        return [f"ServeDeploySchema: {error}"]
    errors = _unknown("serveConfigV2", document, set(ServeDeploySchema.__fields__))
    for index, app in enumerate(document.get("applications", [])):
        errors += _application_errors(index, app, fields)
    return errors


def main() -> int:
    documents = json.load(sys.stdin)
    fields = llm_fields()
    results = {label: check(text, fields) for label, text in documents.items()}
    json.dump(results, sys.stdout, indent=2)
    return 0 if not any(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
