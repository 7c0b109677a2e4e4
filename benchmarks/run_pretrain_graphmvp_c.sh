#!/usr/bin/env bash
# The shipped checkpoint's pre-training: GraphMVP-C on the default 50k MOSES sample (fixed seed),
# planned for GraphMVP's 100 epochs. Resumable: rerun the same command after any stop and it
# continues from its last finished epoch (the encoder dir in $OUT is valid after every epoch).
#   nohup benchmarks/run_pretrain_graphmvp_c.sh > benchmarks/logs/pretrain.log 2>&1 &
# One conformer per molecule (NUM_CONFS, default 1; GraphMVP used 5): 50k x 5 takes ~1 h of the
# session's 2 cores before the first epoch. The saved state below was made with 1; another
# NUM_CONFS is another conformer store, and resuming that state then fails with a clear error.
# then ship it:  python scripts/ship_checkpoint.py $OUT graphmvp-c --command "<this command>"
# Across sessions: the run's resume state (config + checkpoints/last.*, ~50 MB with Adam's
# moments) is kept in benchmarks/state/pretrain-graphmvp-c, which git ignores (too large to
# commit; it stays on the machine that made it). This script copies it into an empty $OUT before
# resuming; after a stop, save it there with
#   SAVE_STATE=1 benchmarks/run_pretrain_graphmvp_c.sh   (copies $OUT's state, trains nothing)
# Without the state (a fresh clone) the run starts again at epoch 1 (same seed and data). The
# conformers are regenerated (same seed and settings, so the same store key; ~20 min for 50k x 1
# on 2 cores).
# Batch 32, not GraphMVP's 256: on CPU, SchNet's per-edge tensors at batch 256 fall out of cache
# and throughput drops (benchmarks/results/speed.md: 102 vs 61 mol/s for GraphMVP); EBM-NCE
# draws one negative per positive either way.
set -euo pipefail
cd "$(dirname "$0")/.."
export FEWMOL_DATA="${FEWMOL_DATA:-$(cd .. && pwd)/shared/data}"
export FEWMOL_CACHE="${FEWMOL_CACHE:-$PWD/benchmarks/work/cache}"
FEWMOL="${FEWMOL:-.venv/bin/fewmol}"
OUT="${OUT:-benchmarks/work/pretrain/graphmvp-c}"
STATE=benchmarks/state/pretrain-graphmvp-c
if [ -n "${SAVE_STATE:-}" ]; then
    mkdir -p "$STATE/checkpoints"
    cp "$OUT/config.json" "$OUT/pretrain_log.csv" "$STATE/"
    cp "$OUT/checkpoints/last.json" "$OUT/checkpoints/last.safetensors" "$STATE/checkpoints/"
    echo "saved the resume state of $OUT in $STATE"
    exit 0
fi
if [ ! -e "$OUT/checkpoints/last.safetensors" ] && [ -e "$STATE/checkpoints/last.safetensors" ]; then
    mkdir -p "$OUT"
    cp -r "$STATE/." "$OUT/"
    echo "resuming from the saved state in $STATE"
fi
"$FEWMOL" pretrain --method graphmvp-c --data moses --max-molecules 50000 --featurizer hu2019 \
    --num-confs "${NUM_CONFS:-1}" --epochs "${EPOCHS:-100}" --batch-size 32 --seed 0 \
    --workers 2 --out "$OUT" --resume --quiet "$@"
