#!/usr/bin/env bash
# The "rf" row (classical baseline) of the classification table: a random forest with 500 trees
# per task on Morgan counts (radius 2, 2048) + RDKit 2D descriptors, on the same scaffold splits
# and seeds as the GIN rows. Resumable per cell (finished cells are skipped). One thread:
#   OMP_NUM_THREADS=1 nohup benchmarks/run_classification_rf.sh > benchmarks/logs/rf.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
export FEWMOL_DATA="${FEWMOL_DATA:-$(cd .. && pwd)/shared/data}"
DATASETS="${DATASETS:-bbbp,clintox,bace,sider,tox21,hiv,muv,toxcast}"
.venv/bin/fewmol bench run classification --methods rf --seeds 0,1,2 \
    --datasets "$DATASETS" --out benchmarks/results --work benchmarks/work "$@"
