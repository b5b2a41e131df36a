#!/usr/bin/env bash
# The prepared GPU check of issue #15: training throughput of each method family, fast path
# off / on / on + torch.compile, and torchrun on all GPUs when there are several.
# Run from the repository root after `pip install -e .` (torch with CUDA already installed;
# nothing is downloaded): bash benchmarks/gpu/run.sh [extra throughput.py options]
# Finishes in under 10 minutes (a 540 s deadline, 150 s hard limit per case) and writes
# benchmarks/gpu/results.json and results.md; commit both.
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device: this script measures a GPU"
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s):",
      ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())))
PY
exec timeout --kill-after 20 580 python benchmarks/gpu/throughput.py --deadline 540 "$@"
