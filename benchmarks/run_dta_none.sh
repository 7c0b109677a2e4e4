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
# (benchmarks/speed/dta_speed.py for training, dta_eval_speed.py for the per-epoch evaluation of
# the valid + test folds, OMP_NUM_THREADS=1; repeat runs vary 20-40 %):
#   davis: 167 training pairs/s x 20,036 pairs ~ 2.0 min + evaluation of 10,020 pairs ~ 2.5 s
#          (each drug and protein encoded once; 14 s before 139d23d) = ~2.1 min per epoch;
#          100 epochs x 3 seeds ~ 10.5 h, so DAVIS_EPOCHS=10: ~21 min per seed, ~1 h for 3
#          seeds (a row: none, graphmvp-c, ~2.1 h of one thread). Measured in session 9 (two
#          1-thread workers): 210-265 training pairs/s, 11-15 min per 10-epoch cell.
#   kiba:  111 training pairs/s x 78,836 pairs ~ 11.8 min + evaluation of 39,418 pairs ~ 15 s
#          (184 s before 139d23d) = ~12 min per epoch; 100 epochs x 3 seeds ~ 60 h, and
#          even 10 epochs would be ~2 h per seed, ~12 h for a none + graphmvp-c table: more
#          than two sessions' cores. So KIBA_EPOCHS=3: ~36 min per seed, ~3.6 h for both rows
#          (each cell resumable by epoch; 3 epochs = ~920 steps of 256 pairs)
# The epochs are recorded per run and printed beside the numbers (`[N ep]`); the paper's
# budget is 100 epochs. MAX_PAIRS=N trains on a seeded subsample of N pairs instead (recorded).
# METHODS=graphmvp-c (or none,graphmvp-c) runs the shipped GraphMVP-C encoder's row on the same
# budget.
set -euo pipefail
cd "$(dirname "$0")/.."
export FEWMOL_DATA="${FEWMOL_DATA:-$(cd .. && pwd)/shared/data}"
DATASETS="${DATASETS:-davis,kiba}"
DAVIS_EPOCHS="${DAVIS_EPOCHS:-10}"
KIBA_EPOCHS="${KIBA_EPOCHS:-3}"
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
