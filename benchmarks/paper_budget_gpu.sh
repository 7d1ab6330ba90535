#!/usr/bin/env bash
# Tables 2–4 at VEGAS scale under the paper's budgets on one GPU, within a wall-clock limit.
#
# Two processes share the GPU (the small MLPs leave it mostly idle; each process is bound by its own
# kernel launches on its own CPU core): A runs ours and the Table 2 deep baselines, B the Table 4
# ablations and then the CPU methods. Each prints one row per finished model (bench_tables.py's
# columns); a model still running at the limit is cut off and reported as such.
#
#   OUT=/tmp/paper_gpu LIMIT_S=360 bash benchmarks/paper_budget_gpu.sh
set -u
OUT=${OUT:-benchmarks/results/paper_gpu}
LIMIT_S=${LIMIT_S:-360}
mkdir -p "$OUT"
export PYTHONPATH=src:benchmarks PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/machine.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/machine.txt"
run() {  # name, methods...
  local name=$1; shift
  timeout "$LIMIT_S" python3 benchmarks/bench_tables.py --budget paper --device cuda --keep-going \
    --out-dir "/tmp/paper_gpu_$name" "$@" >"$OUT/$name.tsv" 2>"$OUT/$name.err"
  echo "process $name exit $?" >>"$OUT/$name.tsv"
}
run A ours dcca dscmr acmr c_dcca tnn_c_cca ucal ugach agah &
run B explicit implicit ex_im_share random cca c_cca kcca &
wait
cat "$OUT/A.tsv" "$OUT/B.tsv"
tail -n 5 "$OUT/A.err" "$OUT/B.err"
