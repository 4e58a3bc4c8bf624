#!/usr/bin/env bash
# Creates .venv-ray: Ray Serve at the release the RayService manifests pin, to check generated
# serveConfigV2 documents with Ray's own schema (tests/manifests/check_serve_config.py).
# It lives apart from .venv because Ray's protobuf requirement clashes with pulumi's.
# Usage: scripts/ray_venv.sh            (idempotent: does nothing when the pinned Ray is there)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RAY_VENV:-$ROOT/.venv-ray}"
PYTHON="${PYTHON:-python3}"

# The one place the version is written: components/manifests/versions.py (read, not imported).
RAY_VERSION="$("$PYTHON" - "$ROOT/components/manifests/versions.py" <<'PY'
import ast, sys
tree = ast.parse(open(sys.argv[1]).read())
for node in tree.body:
    if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "RAY_VERSION":
        print(ast.literal_eval(node.value))
        break
else:
    sys.exit("RAY_VERSION not found in components/manifests/versions.py")
PY
)"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c \
    "import sys, ray, ray.serve.schema; sys.exit(ray.__version__ != '$RAY_VERSION')" 2>/dev/null; then
    echo "$VENV already has ray $RAY_VERSION"
    exit 0
fi

rm -rf "$VENV"
# uv (pinned in .venv by the Makefile) installs in seconds; plain pip works too, slower.
UV="$ROOT/.venv/bin/uv"
if [ -x "$UV" ]; then
    "$UV" venv --quiet --python "$PYTHON" "$VENV"
    "$UV" pip install --quiet --python "$VENV/bin/python" "ray[serve]==$RAY_VERSION"
else
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "ray[serve]==$RAY_VERSION"
fi
"$VENV/bin/python" -c "import ray, ray.serve.schema; print('ray', ray.__version__, 'in $VENV')"
