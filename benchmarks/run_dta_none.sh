#!/usr/bin/env bash
# The "none" (no pre-training) DTA row of REFERENCE A2: Davis (pKd) and KIBA scores with
# DeepDTA's setting-1 folds (fixed test fold; training fold 0 validates), seeds 0,1,2, test
# MSE and concordance index; `fewmol dta`'s model (GIN 5 x 300 + DeepDTA CNN + MLP), batch 256.
# Resumable: rerun after any stop (finished cells skipped, an unfinished cell continues from its
# last epoch); several workers may share the grid, e.g. on 2 cores, one thread each:
#   OMP_NUM_THREADS=1 DATASETS=davis nohup benchmarks/run_dta_none.sh > benchmarks/logs/dta_davis.log 2>&1 &
#   OMP_NUM_THREADS=1 DATASETS=kiba  nohup benchmarks/run_dta_none.sh > benchmarks/logs/dta_kiba.log 2>&1 &
#
# Epochs, sized from measured throughput on one thread of this busy 2-core machine
# (benchmarks/speed/dta_speed.py, OMP_NUM_THREADS=1; repeat runs vary 20-40 %):
#   davis: 167 training pairs/s x 20,036 pairs ~ 2.0 min + evaluation of 10,020 valid/test
#          pairs at ~600 pairs/s ~ 0.3 min = ~2.3 min per epoch; 100 epochs x 3 seeds ~ 11.5 h,
#          so DAVIS_EPOCHS=10: ~23 min per seed, ~1.2 h for 3 seeds (a row: none, graphmvp-c,
#          ~2.3 h of one thread; 30 epochs would be ~7 h, more than a session's two cores)
#   kiba:  111 training pairs/s x 78,836 pairs ~ 11.8 min + 39,418 valid/test pairs at ~230
#          pairs/s ~ 2.9 min = ~15 min per epoch; 100 epochs x 3 seeds ~ 74 h,
#          so KIBA_EPOCHS=10: ~2.5 h per seed, ~7.5 h for 3 seeds
# The epochs are recorded per run and printed beside the numbers (`[N ep]`); the paper's
# budget is 100 epochs. MAX_PAIRS=N trains on a seeded subsample of N pairs instead (recorded).
# METHODS=graphmvp-c (or none,graphmvp-c) runs the shipped GraphMVP-C encoder's row on the same
# budget.
set -euo pipefail
cd "$(dirname "$0")/.."
export FEWMOL_DATA="${FEWMOL_DATA:-$(cd .. && pwd)/shared/data}"
DATASETS="${DATASETS:-davis,kiba}"
DAVIS_EPOCHS="${DAVIS_EPOCHS:-10}"
KIBA_EPOCHS="${KIBA_EPOCHS:-10}"
OUT="${OUT:-benchmarks/results}"
WORK="${WORK:-benchmarks/work}"
EXTRA=()
[ -n "${MAX_PAIRS:-}" ] && EXTRA+=(--max-pairs "$MAX_PAIRS")
for ds in ${DATASETS//,/ }; do
    case "$ds" in
        davis) epochs="$DAVIS_EPOCHS" ;;
        kiba) epochs="$KIBA_EPOCHS" ;;
        *) echo "unknown DTA dataset: $ds (davis, kiba)" >&2; exit 2 ;;
    esac
    .venv/bin/fewmol bench dta --methods "${METHODS:-none}" --seeds 0,1,2 --datasets "$ds" \
        --epochs "$epochs" --out "$OUT" --work "$WORK" "${EXTRA[@]}" "$@"
done
