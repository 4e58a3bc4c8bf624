#!/usr/bin/env bash
# Builds .venv-weights: the vLLM image's own Python packages (requirements.txt, by hash, as the
# Dockerfile installs them) plus moto's S3 server, for tests/serving_images/test_weight_cache.py, which
# runs weight_cache.py against a real S3 API on the loopback interface.
#
#   serving_images/vllm/test_venv.sh   build .venv-weights when missing or stale (else do nothing)
#
# jmespath and urllib3 are not in requirements.txt because the vLLM image already has them; the venv
# takes vLLM's pins of them from scripts/vllm_cpu_requirements.txt, so the tests run the versions the
# image runs. Everything else moto needs is pinned by test_constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."

MOTO_VERSION="5.2.5"
VENV="${WEIGHTS_VENV:-.venv-weights}"
PYTHON="${WEIGHTS_PYTHON:-python3}"
IMAGE_REQUIREMENTS="serving_images/vllm/requirements.txt"
CONSTRAINTS="serving_images/vllm/test_constraints.txt"
VLLM_PINS="scripts/vllm_cpu_requirements.txt"

vllm_pin() {
  local line
  line="$(grep -i "^$1==" "$VLLM_PINS")" || { echo "$VLLM_PINS pins no $1" >&2; exit 1; }
  echo "$line"
}
shared=("$(vllm_pin jmespath)" "$(vllm_pin urllib3)")

STAMP="$VENV/.inferfleet-stamp"
stamp() {
  echo "moto==$MOTO_VERSION ${shared[*]}" \
    "inputs-sha256=$(cat "$IMAGE_REQUIREMENTS" "$CONSTRAINTS" | sha256sum | cut -d' ' -f1)"
}
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(stamp)" ]]; then
  echo "$VENV is current (moto $MOTO_VERSION, ${shared[*]})"
  exit 0
fi

echo "building $VENV (moto[server]==$MOTO_VERSION)" >&2
start=$SECONDS
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check -qq)
"${pip[@]}" install --no-deps --only-binary :all: --require-hashes -r "$IMAGE_REQUIREMENTS"
"${pip[@]}" install -c "$CONSTRAINTS" "${shared[@]}" "moto[server]==$MOTO_VERSION"
"${pip[@]}" check
"$VENV/bin/python" -c "import boto3, moto.server"
stamp > "$STAMP"
echo "built $VENV in $((SECONDS - start)) s"
