#!/usr/bin/env bash
# The "none" (no pre-training) row of REFERENCE A1, full protocol: scaffold split, 100 epochs,
# seeds 0,1,2. Resumable: rerun the same command after any stop; finished cells are skipped.
# Small sets first so whole datasets land early; HIV and MUV last (a GPU or several sessions).
set -euo pipefail
cd "$(dirname "$0")/.."
export FEWMOL_DATA="${FEWMOL_DATA:-$(cd .. && pwd)/shared/data}"
DATASETS="${DATASETS:-clintox,sider,bace,bbbp,tox21,toxcast}"
.venv/bin/fewmol bench run classification --methods none --seeds 0,1,2 \
    --datasets "$DATASETS" --out benchmarks/results --work benchmarks/work "$@"
