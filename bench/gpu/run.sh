#!/usr/bin/env bash
# GPU check for an NVIDIA machine: DeepSeek-V2-Lite-sized DeepSeek model, random weights, vLLM,
# tokens/s at batch 1 and 32, direct and through the gateway. Finishes within 8 minutes.
#
#   bash bench/gpu/run.sh                      # uses .venv/bin/python if present, else python3
#   PYTHON=/opt/venv/bin/python VLLM_PYTHON=/opt/vllm/bin/python bash bench/gpu/run.sh
#
# Needs: nvidia-smi and a GPU with >= 40 GB; `vllm` importable by $VLLM_PYTHON (default $PYTHON);
# this repository importable by $PYTHON (pip install -e .). Nothing is downloaded.
# Output: a table on stdout; JSON, doctor.json and servers.log in $OUT (or bench/results/gpu/).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
VLLM_PYTHON=${VLLM_PYTHON:-$PYTHON}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="" \
  VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader \
  || { echo "no nvidia-smi: this check needs an NVIDIA GPU"; exit 2; }
"$VLLM_PYTHON" -c "import vllm" 2>/dev/null \
  || { echo "vllm is not importable by $VLLM_PYTHON: install the CUDA build of vllm there"; exit 2; }
"$PYTHON" -c "import gateway, inference" \
  || { echo "this repository is not importable by $PYTHON (pip install -e .)"; exit 2; }

exec timeout 480 "$PYTHON" bench/gpu/gpu_check.py --vllm-python "$VLLM_PYTHON" "$@"
