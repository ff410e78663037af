#!/usr/bin/env bash
# Make sure Prometheus's promtool is installed (Debian's prometheus package, without its
# recommends) for tests/e2e/test_monitoring.py, which checks and unit-tests the shipped alert
# rules (deploy/prometheus/) and lints the gateway's /metrics. Idempotent; prints what it did.
# The package's service is not started (no systemd here; nothing of it runs).
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v promtool >/dev/null 2>&1; then
  echo "ensure-promtool: installing Debian's prometheus (for promtool)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
