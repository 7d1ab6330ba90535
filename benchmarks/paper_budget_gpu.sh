#!/usr/bin/env bash
# The `paper` budget on one GPU, in at most 8 minutes of wall time, everything written under $OUT:
#
#   1. Table 3 at VEGAS size (bench_table3_paper.py --device cuda): every model's paper schedule,
#      measured (closed form) or projected from 1- and 2-epoch fits, the dual-subspace family in
#      float32 and bfloat16 — goal: all 16 models x 1 seed projected <= 30 min (paper ~430 min);
#   2. `ours`'s whole 1,000-epoch schedule (bench_tables.py --budget paper ours) — goal <= 2 min
#      (paper 8.36 GPU minutes);
#   3. seeds trained together against one after the other (bench_seeds_together.py --device cuda),
#      the case `evaluation.seeds_together: auto` turns it on for.
#
# Each step has its own time limit, so a slow one cannot eat the others' time; a step cut off says so.
#
#   OUT=/tmp/paper_gpu bash benchmarks/paper_budget_gpu.sh
set -u
OUT=${OUT:-benchmarks/results/paper_gpu}
mkdir -p "$OUT"
export PYTHONPATH=src:benchmarks PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/machine.txt"
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/machine.txt"
step() {  # name, seconds, command...
  local name=$1 limit=$2; shift 2
  local started=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local status=$?
  echo "$name: exit $status after $((SECONDS - started)) s$([ $status = 124 ] && echo " (cut off at $limit s)")" | tee -a "$OUT/steps.txt"
}
step table3 240 "$PYTHON" benchmarks/bench_table3_paper.py --device cuda --out "$OUT/table3_paper_cuda.tsv"
step ours_paper 150 "$PYTHON" benchmarks/bench_tables.py --budget paper --device cuda --out-dir /tmp/paper_gpu_ours ours
cp /tmp/paper_gpu_ours/runs.tsv "$OUT/ours_paper_runs.tsv" 2>/dev/null
step seeds_together 60 "$PYTHON" benchmarks/bench_seeds_together.py --device cuda --out "$OUT/seeds_together_cuda.tsv"
cat "$OUT/steps.txt"
tail -n 25 "$OUT"/table3_paper_cuda.tsv "$OUT"/ours_paper_runs.tsv "$OUT"/seeds_together_cuda.tsv 2>/dev/null
