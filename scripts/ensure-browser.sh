#!/usr/bin/env bash
# Make sure Debian's Chromium is installed for the browser tests (tests/e2e/test_browser_cors.py,
# driven by Playwright with executable_path /usr/bin/chromium; Playwright's own browser download
# is never used). Idempotent; prints what it did.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v chromium >/dev/null 2>&1; then
  echo "ensure-browser: installing chromium"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
