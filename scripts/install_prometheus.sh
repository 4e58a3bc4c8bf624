#!/usr/bin/env bash
# Installs promtool (Debian's `prometheus` package) for the alert-rule tests
# (tests/manifests/test_alerts_promtool.py): `promtool check rules` and `promtool test rules`.
# Usage: scripts/install_prometheus.sh   (idempotent: does nothing when promtool is on PATH)
set -euo pipefail

if ! command -v promtool >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    # The package starts a Prometheus server as a service; the tests only need the binaries.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
        $SUDO systemctl stop prometheus || true
    fi
fi
promtool --version 2>&1 | head -n 1
