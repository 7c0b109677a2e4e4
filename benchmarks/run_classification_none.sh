#!/usr/bin/env bash
# The "none" (no pre-training) row of REFERENCE A1, full protocol: scaffold split, 100 epochs,
# seeds 0,1,2. Resumable: rerun the same command after any stop; finished cells are skipped and
# an unfinished cell continues from its last epoch. Several workers may share the grid (each
# cell is locked by the worker running it), e.g. on 2 cores, one thread each:
#   OMP_NUM_THREADS=1 nohup benchmarks/run_classification_none.sh > w1.log 2>&1 &
#   OMP_NUM_THREADS=1 DATASETS=bbbp,bace,sider,toxcast,tox21,clintox \
#       nohup benchmarks/run_classification_none.sh > w2.log 2>&1 &
# HIV and MUV: DATASETS=hiv,muv EPOCHS=<what fits> (the epochs are recorded beside the number).
# METHODS=none+ogb trains the same row on the OGB featuriser (results/classification/none+ogb/).
set -euo pipefail
cd "$(dirname "$0")/.."
export FEWMOL_DATA="${FEWMOL_DATA:-$(cd .. && pwd)/shared/data}"
DATASETS="${DATASETS:-clintox,sider,bace,bbbp,tox21,toxcast}"
EXTRA=()
[ -n "${EPOCHS:-}" ] && EXTRA+=(--epochs "$EPOCHS")
.venv/bin/fewmol bench run classification --methods "${METHODS:-none}" --seeds 0,1,2 \
    --datasets "$DATASETS" --out benchmarks/results --work benchmarks/work "${EXTRA[@]}" "$@"
