#!/usr/bin/env bash
# Make sure Anthropic's Claude Code CLI is installed for the slow-tier test that points it at the
# gateway (tests/e2e/test_claude_code.py): a pinned version from the npm registry into
# .tools/claude-code (ignored by git), never globally. Claude Code is proprietary software used
# here only as a client under test, as the bench uses LiteLLM; nothing of it is shipped.
# Idempotent; prints what it did.
set -euo pipefail

VERSION="${CLAUDE_CODE_VERSION:-2.1.197}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="$ROOT/.tools/claude-code"
BIN="$DIR/node_modules/.bin/claude"

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "^$VERSION "; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "ensure-claude-code: npm is needed (Node.js 18 or later)" >&2
  exit 1
fi
echo "ensure-claude-code: installing @anthropic-ai/claude-code@$VERSION into .tools/claude-code"
mkdir -p "$DIR"
cd "$DIR"
[ -f package.json ] || echo '{"private": true}' > package.json
npm install --silent --no-audit --no-fund --no-save "@anthropic-ai/claude-code@$VERSION" >/dev/null
# npm 11 may skip install scripts; the package's own places the platform binary
(cd node_modules/@anthropic-ai/claude-code && node install.cjs >/dev/null 2>&1 || true)
"$BIN" --version
