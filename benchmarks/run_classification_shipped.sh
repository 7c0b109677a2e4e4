#!/usr/bin/env bash
# The shipped encoder's row (`--init graphmvp`: GraphMVP-C on OGB features, 50k MOSES x 1
# conformer, 7 epochs) of the classification table, fine-tuned from the dir that ships inside
# the package, so the row needs no pre-training work dir (one lost with a machine is not re-made).
# Its results go to classification/graphmvp-c-ogb/, beside the cells fine-tuned from the
# pre-training run it was copied from (the same weights); compare it with METHODS=none+ogb of
# run_classification_none.sh (the same featuriser, from scratch). Resumable and lock-shared like
# the other grid scripts. HIV and MUV: EPOCHS as the none row (5 and 2).
set -euo pipefail
cd "$(dirname "$0")/.."
export FEWMOL_DATA="${FEWMOL_DATA:-$(cd .. && pwd)/shared/data}"
DATASETS="${DATASETS:-tox21,toxcast}"
EXTRA=()
[ -n "${EPOCHS:-}" ] && EXTRA+=(--epochs "$EPOCHS")
SHIPPED="$(.venv/bin/python -c 'from fewmol.io.modeldir import resolve_init; print(resolve_init("graphmvp"))')"
.venv/bin/fewmol bench run classification --methods graphmvp-c-ogb \
    --pretrained "graphmvp-c-ogb=$SHIPPED" --seeds "${SEEDS:-0,1,2}" \
    --datasets "$DATASETS" --out benchmarks/results --work benchmarks/work "${EXTRA[@]}" "$@"
