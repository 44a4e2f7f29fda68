#!/usr/bin/env bash
# Two training runs at once on one machine: each with every core (threads=N, what torch does
# by itself) against the share gm gives them (threads=null), and one run alone for scale.
#   benchmarks/parallel_runs.sh CORPUS [CORES]
# Prints each run's training throughput (tokens/s, from its metrics.json). Measure on an
# otherwise quiet machine. docs/benchmarks.md has the numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:?usage: benchmarks/parallel_runs.sh CORPUS [CORES]}
cores=${2:-$(python3 -c 'import os; print(len(os.sched_getaffinity(0)))')}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
common=(model=astra_alpha "data.path=$corpus" trainer.max_epochs=1 trainer.limit_val_batches=5
        '~callbacks.samples' '~callbacks.progress_bar' +trainer.enable_progress_bar=false
        callbacks.share_cores.every_s=1)
unset OMP_NUM_THREADS MKL_NUM_THREADS  # the environment would set the threads itself
py=${PYTHON:-.venv/bin/python}
run() {
  "$py" train.py "${common[@]}" "hydra.run.dir=$out/$1" "${@:2}" > "$out/$1.log" 2>&1 \
    || { echo "run $1 failed:" >&2; tail -3 "$out/$1.log" >&2; exit 1; }
}
run alone trainer.limit_train_batches=60
run all_cores_a "threads=$cores" trainer.limit_train_batches=30 &
run all_cores_b "threads=$cores" trainer.limit_train_batches=30 & wait
run shared_a trainer.limit_train_batches=60 & run shared_b trainer.limit_train_batches=60 & wait
for r in alone all_cores_a all_cores_b shared_a shared_b; do
  "$py" -c "import json, sys; m = json.load(open(sys.argv[2])); print(f'{sys.argv[1]:12} {m[\"train_tokens_per_s\"]:>10,.0f} tokens/s')" "$r" "$out/$r/metrics.json"
done
