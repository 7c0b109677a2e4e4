#!/usr/bin/env bash
# The "none" (no pre-training) row of REFERENCE A2, regression: ESOL, Lipophilicity, Malaria,
# CEP, FreeSolv; scaffold split 80/10/10, seeds 0,1,2, test RMSE (MAE and R² stored too),
# targets standardised on the training split. Resumable: rerun after any stop; finished cells
# are skipped, an unfinished cell continues from its last epoch; several workers may share
# the grid (cells are locked), e.g. on 2 cores, one thread each:
#   OMP_NUM_THREADS=1 nohup benchmarks/run_regression_none.sh > benchmarks/logs/regression_none.log 2>&1 &
#
# Epochs, sized for one thread of this busy 2-core machine. First estimate (OMP_NUM_THREADS=1,
# GIN 5 x 300, batch 32, train + valid/test evaluation, float32): ESOL 5.3 s/epoch (1,128
# molecules, 13 heavy atoms on average), Lipophilicity 41 s/epoch (4,200 molecules, 27 atoms),
# ~0.36 ms per heavy atom per epoch. The finished bf16-mixed Lipophilicity cells then took
# 1,584 s for 100 epochs (15.8 s/epoch, ~0.14 ms per heavy atom per epoch); at that rate:
#   esol + freesolv + lipo at 100 epochs (the paper's): ~0.2 h + ~0.1 h + ~1.3 h for 3 seeds
#   malaria (9,999 molecules, 30 atoms, ~42 s/epoch): 100 epochs ~1.2 h per seed, so
#       MALARIA_EPOCHS=30: ~21 min per seed
#   cep (29,978 molecules, 28 atoms, ~2 min/epoch): 100 epochs ~3.3 h per seed, so
#       CEP_EPOCHS=10: ~20 min per seed
# The epochs are recorded per run and printed beside the numbers (`[N ep]`).
# METHODS=graphmvp-c runs another row on the same budget (run_regression_graphmvp_c.sh does).
# The paper ran these sets with the 9-feature OGB featuriser: METHODS=none+ogb trains that row
# beside the hu2019 one (results/regression/none+ogb/); FEATURIZER=ogb instead replaces the
# featuriser of every row asked for (one results tree holds one budget per cell).
set -euo pipefail
cd "$(dirname "$0")/.."
export FEWMOL_DATA="${FEWMOL_DATA:-$(cd .. && pwd)/shared/data}"
DATASETS="${DATASETS:-esol,freesolv,lipo,malaria,cep}"
METHODS="${METHODS:-none}"
SMALL_EPOCHS="${SMALL_EPOCHS:-100}"
MALARIA_EPOCHS="${MALARIA_EPOCHS:-30}"
CEP_EPOCHS="${CEP_EPOCHS:-10}"
OUT="${OUT:-benchmarks/results}"
WORK="${WORK:-benchmarks/work}"
EXTRA=()
[ -n "${FEATURIZER:-}" ] && EXTRA+=(--featurizer "$FEATURIZER")
for ds in ${DATASETS//,/ }; do
    case "$ds" in
        esol|freesolv|lipo) epochs="$SMALL_EPOCHS" ;;
        malaria) epochs="$MALARIA_EPOCHS" ;;
        cep) epochs="$CEP_EPOCHS" ;;
        *) echo "unknown regression dataset: $ds (esol, freesolv, lipo, malaria, cep)" >&2; exit 2 ;;
    esac
    .venv/bin/fewmol bench regression --methods "$METHODS" --seeds 0,1,2 --datasets "$ds" \
        --epochs "$epochs" --out "$OUT" --work "$WORK" "${EXTRA[@]}" "$@"
done
