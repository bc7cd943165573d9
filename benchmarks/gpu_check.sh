#!/usr/bin/env bash
# The GPU path in one command: on a machine with a CUDA GPU (and the torch build for it), from the
# repository root, after `pip install -e .`:
#
#     bash benchmarks/gpu_check.sh [DATA_PATH]
#
# RecBole puts the model on the GPU whenever torch sees one (use_gpu: True, its default).
# 1. the main command on the GPU, 3 epochs (step_precision and embedding_device on auto: bfloat16
#    products and the GPU encoder); prints the test line;
# 2. the overhead benchmark on the GPU (FAERec / bare epoch and evaluation ratios, the text
#    prior's fit time and evaluation share);
# 3. the embedding throughput of the packaged MiniLM on the GPU.
# Each step ends with one line of figures, prefixed `gpu_check`.
set -euo pipefail
cd "$(dirname "$0")/.."
data_path="${1:-dataset}"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: no CUDA GPU visible to torch')"
echo "gpu_check device: $(python -c 'import torch; print(torch.cuda.get_device_name(0), torch.__version__)')"

log=$(mktemp)
python run_recbole_faerec.py --model=SASRec --dataset=amazon-beauty --data_path="$data_path" \
  --epochs=3 --show_progress=False > "$log" 2>&1
echo "gpu_check main: $(grep -a 'test result' "$log" | tail -n 1 | cut -c1-300)"

python benchmarks/overhead.py --data-path "$data_path" --repeats 2 --prefix-repeats 0 \
  --length-repeats 0 --flop-batches 0 2>/dev/null \
  | grep -E '^(text_prior_fit_s|train_epoch_ratio)' | tr '\n' ' ' | sed 's/^/gpu_check overhead: /'
echo

python benchmarks/embedding_throughput.py --data-path "$(mktemp -d)" --neighbours 0 2>/dev/null \
  | tail -n 1 | sed 's/^/gpu_check embedding: /'
