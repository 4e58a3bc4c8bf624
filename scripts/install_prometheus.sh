#!/usr/bin/env bash
# Installs promtool (Debian's `prometheus` package) for the alert-rule tests
# (tests/manifests/test_alerts_promtool.py): `promtool check rules` and `promtool test rules`; and amtool
# (Debian's `prometheus-alertmanager`) for the Alertmanager configuration (tests/manifests/test_alerting.py).
# Usage: scripts/install_prometheus.sh   (idempotent: does nothing when both are on PATH)
set -euo pipefail

if ! command -v promtool >/dev/null 2>&1 || ! command -v amtool >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null
    # The packages start their servers as services; the tests only need the binaries.
    for service in prometheus prometheus-alertmanager; do
        if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
            $SUDO systemctl stop "$service" || true
        fi
    done
fi
promtool --version 2>&1 | head -n 1
amtool --version 2>&1 | head -n 1
