#!/usr/bin/env bash
# `make run`: migrate, build the tiny DeepSeek model, serve it, create demo keys, start the gateway.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS=""
BIN=.venv/bin
CONFIG=examples/demo.yaml
PCS="$BIN/portcullis --config $CONFIG"
MODEL_DIR=.portcullis/tiny-deepseek
RUNTIME_PORT=8081

mkdir -p .portcullis
$PCS db upgrade >/dev/null
if [ ! -f "$MODEL_DIR/config.json" ]; then
  echo "building a tiny DeepSeek-V3-architecture model in $MODEL_DIR (random weights, real tokenizer)"
  $BIN/portcullis runtime make-tiny --out "$MODEL_DIR" >/dev/null
fi

echo "starting the self-hosted runtime on 127.0.0.1:$RUNTIME_PORT"
$BIN/portcullis runtime serve --model "$MODEL_DIR" --served-model-name tiny-deepseek \
  --host 127.0.0.1 --port "$RUNTIME_PORT" > .portcullis/runtime.log 2>&1 &
RUNTIME_PID=$!
trap 'kill $RUNTIME_PID 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 300); do
  if curl -fs "http://127.0.0.1:$RUNTIME_PORT/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 $RUNTIME_PID 2>/dev/null; then echo "runtime failed; see .portcullis/runtime.log"; exit 1; fi
  sleep 0.2
done

# The keys an earlier `make run` printed are revoked (recorded in the audit trail), so the demo
# database holds three active demo keys, not three more per run.
for user in demo demo-official demo-officer; do
  for id in $($PCS keys list --user "$user" --json 2>/dev/null | $BIN/python -c \
      'import json, sys; print(" ".join(k["key_id"] for k in json.load(sys.stdin)))'); do
    $PCS keys revoke "$id" >/dev/null 2>&1 || true
  done
done
KEY=$($PCS keys create --user demo --team demo --jurisdiction AU-NSW --sector private 2>/dev/null)
GOV_KEY=$($PCS keys create --user demo-official --jurisdiction AU --sector government 2>/dev/null)
OFFICER_KEY=$($PCS keys create --user demo-officer --jurisdiction AU --sector private \
  --role admin --role auditor --tag audit-scope:all --description "make run: console demo" 2>/dev/null)

cat <<TXT

Portcullis is starting on http://127.0.0.1:8080 (embedded defaults: SQLite, in-process policy).

Your demo key (AU-NSW, private sector):    $KEY
A public servant's key (AU, government):    $GOV_KEY

  curl -s http://127.0.0.1:8080/v1/chat/completions \\
    -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \\
    -d '{"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hello, I am Alice Smith"}]}'

  python - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="http://127.0.0.1:8080/v1", api_key="$KEY")
for chunk in client.chat.completions.create(model="deepseek-chat", stream=True,
        messages=[{"role": "user", "content": "Hello"}]):
    print(chunk.choices[0].delta.content or "", end="", flush=True)
print("\n" + client.responses.create(model="deepseek-chat", input="Hello").output_text)  # Responses API
PY

The answer comes from DeepSeek-architecture weights on this machine (random, so nonsense).
Try the public servant's key: Australia's PSPF Direction 001-2025 denies DeepSeek to
Commonwealth entities, and the gateway says so, with the citation.

The compliance console: http://127.0.0.1:8080/console/
sign in with the compliance officer's key (roles admin and auditor):    $OFFICER_KEY
(the audit trail of the requests above, verification, exports, usage, keys, policy what-if)

TXT
$PCS serve
