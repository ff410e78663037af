#!/usr/bin/env bash
# GPU check for an NVIDIA machine: DeepSeek-V2-Lite-sized DeepSeek model, random weights, on vLLM
# (where importable) or the transformers engine; tokens/s at batch 1 and 32, direct and through
# the gateway. Finishes within 8 minutes.
#
#   bash bench/gpu/run.sh                      # uses .venv/bin/python if present, else python3
#   PYTHON=/opt/venv/bin/python VLLM_PYTHON=/opt/vllm/bin/python bash bench/gpu/run.sh
#   bash bench/gpu/run.sh --engine transformers --max-tokens 128
#
# Needs: nvidia-smi and a GPU with >= 40 GB; `vllm` importable by $VLLM_PYTHON (default $PYTHON),
# or torch with CUDA and transformers >= 5 for the transformers engine; this repository
# importable by $PYTHON (pip install -e ., or PYTHONPATH). Nothing is downloaded.
# Output: a table on stdout; JSON, doctor.json and servers.log in $OUT (or bench/results/gpu/).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
VLLM_PYTHON=${VLLM_PYTHON:-$PYTHON}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="" \
  VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader \
  || { echo "no nvidia-smi: this check needs an NVIDIA GPU"; exit 2; }
if ! "$VLLM_PYTHON" -c "import vllm" 2>/dev/null; then
  "$PYTHON" -c "import torch, transformers; assert torch.cuda.is_available()" \
    || { echo "neither vllm ($VLLM_PYTHON) nor torch with CUDA and transformers ($PYTHON)"; exit 2; }
fi
"$PYTHON" -c "import gateway, inference" \
  || { echo "this repository is not importable by $PYTHON (pip install -e .)"; exit 2; }

exec timeout 480 "$PYTHON" bench/gpu/gpu_check.py --vllm-python "$VLLM_PYTHON" "$@"
