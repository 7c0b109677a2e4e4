#!/usr/bin/env bash
# The 2D pre-training baselines' rows (issue 7): each method pre-trains on the same data and
# budget as the shipped GraphMVP-C checkpoint (the fixed-seed 50k MOSES sample, 7 epochs; its
# card: src/fewmol/assets/checkpoints/graphmvp-c), 2D graphs only, then is fine-tuned on the
# classification sets under the "none" row's protocol (scaffold split, 100 epochs, seeds 0,1,2).
# Rows are named by method; each record carries its encoder's pre-training budget and wall time.
#   OMP_NUM_THREADS=1 METHODS=attrmask nohup benchmarks/run_pretrain_2d.sh > benchmarks/logs/2d.log 2>&1 &
# Resumable end to end: a finished pre-training is reused, a stopped one continues, finished
# cells are skipped. A pre-training is locked while it runs: a second worker reaching a locked
# one skips that method (exit 0) and goes on, so two workers on benchmarks/queue.txt never
# train the same encoder twice. Defaults: the four smallest sets first (DATASETS), bf16-mixed
# (PRECISION; parity with float32 in benchmarks/results/precision.md), batch 256 (BATCH: the
# pretrain-gnns setting). MOLS / EPOCHS_PRE / EPOCHS_FT are recorded beside every number.
set -euo pipefail
cd "$(dirname "$0")/.."
export FEWMOL_DATA="${FEWMOL_DATA:-$(cd .. && pwd)/shared/data}"
export FEWMOL_CACHE="${FEWMOL_CACHE:-$PWD/benchmarks/work/cache}"
FEWMOL="${FEWMOL:-.venv/bin/fewmol}"
METHODS="${METHODS:-attrmask,contextpred,edgepred,infograph,graphcl,joao,gpt-gnn,graphlog,g-contextual,g-motif}"
MOLS="${MOLS:-50000}"
EPOCHS_PRE="${EPOCHS_PRE:-7}"
BATCH="${BATCH:-256}"
PRECISION="${PRECISION:-bf16-mixed}"
DATASETS="${DATASETS:-bbbp,sider,clintox,bace}"
WORK="${WORK:-benchmarks/work}"
EXTRA=()
[ -n "${EPOCHS_FT:-}" ] && EXTRA+=(--epochs "$EPOCHS_FT")
for m in ${METHODS//,/ }; do
    out="$WORK/pretrain/2d-${m}-${MOLS}x${EPOCHS_PRE}"
    mkdir -p "$(dirname "$out")"
    # flock -n: another worker is pre-training this method; leave it (and its cells) to that one
    if ! flock -n "$out.lock" "$FEWMOL" pretrain --method "$m" --data moses \
        --max-molecules "$MOLS" --epochs "$EPOCHS_PRE" --batch-size "$BATCH" --seed 0 \
        --precision "$PRECISION" --workers 1 --out "$out" --resume --quiet; then
        if ! flock -n "$out.lock" true; then
            echo "$m: another worker is pre-training it; skipped"
            continue
        fi
        echo "$m: pre-training failed" >&2
        exit 1
    fi
    "$FEWMOL" bench classification --methods "$m" --pretrained "$m=$out" \
        --seeds "${SEEDS:-0,1,2}" --datasets "$DATASETS" --precision "$PRECISION" \
        --out "${RESULTS:-benchmarks/results}" --work "$WORK" "${EXTRA[@]}"
done
