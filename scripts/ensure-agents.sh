#!/usr/bin/env bash
# Make sure the coding agents the slow tier points at the gateway are installed: Anthropic's
# Claude Code (tests/e2e/test_claude_code.py: /v1/messages) and OpenAI's Codex CLI
# (tests/e2e/test_codex.py: /v1/responses), pinned versions from the npm registry into .tools/
# (ignored by git), never globally. They are clients under test, as the bench uses LiteLLM;
# nothing of them is shipped (Claude Code is proprietary, Codex Apache-2.0). Idempotent.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

ensure() {  # ensure NAME PACKAGE VERSION BIN
  local name="$1" pkg="$2" version="$3" bin="$4"
  local dir="$ROOT/.tools/$name"
  if [ -x "$dir/node_modules/.bin/$bin" ] && "$dir/node_modules/.bin/$bin" --version 2>/dev/null | grep -q "$version"; then
    return 0
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "ensure-agents: npm is needed (Node.js 18 or later)" >&2
    exit 1
  fi
  echo "ensure-agents: installing $pkg@$version into .tools/$name"
  mkdir -p "$dir"
  (
    cd "$dir"
    [ -f package.json ] || echo '{"private": true}' > package.json
    npm install --silent --no-audit --no-fund --no-save "$pkg@$version" >/dev/null
    # npm 11 may skip install scripts; Claude Code's own places its platform binary
    if [ -f "node_modules/$pkg/install.cjs" ]; then
      (cd "node_modules/$pkg" && node install.cjs >/dev/null 2>&1 || true)
    fi
  )
  "$dir/node_modules/.bin/$bin" --version
}

ensure claude-code @anthropic-ai/claude-code "${CLAUDE_CODE_VERSION:-2.1.197}" claude
ensure codex @openai/codex "${CODEX_VERSION:-0.171.0}" codex
