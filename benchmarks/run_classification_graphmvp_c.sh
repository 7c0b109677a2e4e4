#!/usr/bin/env bash
# The graphmvp-c row: fine-tune the shipped GraphMVP-C encoder (src/fewmol/assets/checkpoints/
# graphmvp-c; its card states the pre-training budget, recorded in every result JSON too) on the
# classification sets, scaffold split, 100 epochs, seeds 0,1,2. Resumable and lock-shared like
# run_classification_none.sh; run one 1-thread worker per core with different DATASETS orders:
#   OMP_NUM_THREADS=1 DATASETS=bace,sider nohup benchmarks/run_classification_graphmvp_c.sh > benchmarks/logs/g1.log 2>&1 &
#   OMP_NUM_THREADS=1 DATASETS=clintox,bbbp nohup benchmarks/run_classification_graphmvp_c.sh > benchmarks/logs/g2.log 2>&1 &
# SEEDS=0,1 narrows the seeds. Results of a re-shipped (longer pre-trained) checkpoint must not be
# mixed with older ones: move benchmarks/results/classification/graphmvp-c away before rerunning.
set -euo pipefail
cd "$(dirname "$0")/.."
export FEWMOL_DATA="${FEWMOL_DATA:-$(cd .. && pwd)/shared/data}"
DATASETS="${DATASETS:-bace,clintox,sider,bbbp,tox21,toxcast}"
EXTRA=()
[ -n "${EPOCHS:-}" ] && EXTRA+=(--epochs "$EPOCHS")
.venv/bin/fewmol bench run classification --methods graphmvp-c --seeds "${SEEDS:-0,1,2}" \
    --datasets "$DATASETS" --out benchmarks/results --work benchmarks/work "${EXTRA[@]}" "$@"
