# Two commands do all the set-up on a fresh machine with Python 3.11+:
#   make plan STACK=prod   creates .venv when missing, then plans stacks/prod.yaml offline
#   make test              creates .venv when missing, then runs the whole test suite
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
STACK ?= dev

.PHONY: venv plan validate render schema docs test bench clean

# uv itself lives in the venv (pinned); `sync --inexact` keeps it there while installing the lock.
$(BIN)/inferfleet: pyproject.toml uv.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv sync --frozen --inexact --quiet --python $(BIN)/python
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
	$(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python -m benchmarks.bench_validate_plan
	$(BIN)/python -m benchmarks.bench_render

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
