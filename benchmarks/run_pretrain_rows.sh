#!/usr/bin/env bash
# Pre-train, then fine-tune, one table row per method. By default the 2D pre-training baselines
# (issue 7): each pre-trains on the same data and budget as the shipped GraphMVP-C checkpoint
# (the fixed-seed 50k MOSES sample, 7 epochs; its card: src/fewmol/assets/checkpoints/
# graphmvp-c), 2D graphs only, then is fine-tuned on the classification sets under the "none"
# row's protocol (scaffold split, 100 epochs, seeds 0,1,2); PROTOCOL=regression fine-tunes the
# same encoders on the regression table. Each record carries its encoder's
# pre-training budget and wall time.
#   OMP_NUM_THREADS=1 METHODS=attrmask nohup benchmarks/run_pretrain_rows.sh > benchmarks/logs/rows.log 2>&1 &
# A variant of one method gets its own row with NAME and PRETRAIN_ARGS (passed to fewmol
# pretrain), e.g. GraphMVP-C with a 5x ContextPred weight, one conformer per molecule:
#   METHODS=graphmvp-c NAME=graphmvp-c-a3x5 BATCH=32 PRETRAIN_ARGS="--alpha3 5 --num-confs 1" \
#       benchmarks/run_pretrain_rows.sh
# Resumable end to end: a finished pre-training is reused, a stopped one continues, finished
# cells are skipped, and a row whose cells all have records is not pre-trained again (its
# encoder may be gone with a new machine's benchmarks/work). Pre-training is deterministic on
# one CPU thread (same seed, commit and machine type: identical weight tensors; records carry
# their SHA-256), so an encoder lost with a machine is re-made bit for bit. A pre-training is locked while it runs: a second
# worker reaching a locked one goes on with the next method and, after its list, waits for
# that pre-training and joins its fine-tuning cells; two workers on benchmarks/queue.txt never
# train the same encoder twice. Defaults: the four smallest sets first (DATASETS), bf16-mixed
# (PRECISION; parity with float32 in benchmarks/results/precision.md), batch 256 (BATCH: the
# pretrain-gnns setting). MOLS / EPOCHS_PRE / EPOCHS_FT are recorded beside every number.
# FROM=DIR continues a finished pre-training dir to EPOCHS_PRE in the row's own dir, e.g. the
# shipped GraphMVP-C (OGB) from 7 to 20 epochs:
#   METHODS=graphmvp-c NAME=graphmvp-c-ogb-e20 EPOCHS_PRE=20 BATCH=32 \
#       FROM=benchmarks/work/pretrain/rows-graphmvp-c-ogb-50000x7 \
#       PRETRAIN_ARGS="--featurizer ogb --num-confs 1" benchmarks/run_pretrain_rows.sh
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
# hu2019 (pretrain-gnns) like every row pre-trained so far, whatever `fewmol pretrain` defaults
# to; PRETRAIN_ARGS="--featurizer ogb" (given after it, so it wins) for a row on OGB features
FEATURIZER="${FEATURIZER:-hu2019}"
# PROTOCOL=regression fine-tunes the same encoders on the regression table instead (default
# sets: the three small ones; Malaria and CEP take ~20 min per cell at reduced epochs);
# PROTOCOL=dta on Davis at run_dta_none.sh's 10 epochs (~15 min per cell; KIBA is ~36 min per
# cell at 3 epochs: DATASETS=kiba EPOCHS_FT=3)
PROTOCOL="${PROTOCOL:-classification}"
case "$PROTOCOL" in
    classification) DATASETS="${DATASETS:-bbbp,sider,clintox,bace}" ;;
    regression) DATASETS="${DATASETS:-esol,freesolv,lipo}" ;;
    dta) DATASETS="${DATASETS:-davis}"; EPOCHS_FT="${EPOCHS_FT:-10}" ;;
    *) echo "PROTOCOL must be classification, regression or dta, not $PROTOCOL" >&2; exit 2 ;;
esac
WORK="${WORK:-benchmarks/work}"
EXTRA=()
[ -n "${EPOCHS_FT:-}" ] && EXTRA+=(--epochs "$EPOCHS_FT")
read -r -a PRE_EXTRA <<< "${PRETRAIN_ARGS:-}"
# PRE_DDP=N pre-trains as N CPU processes under Lightning's DDP; BATCH is then per process, so
# give BATCH/N for the same effective batch. Not the one-process run's weights. On this 2-core
# machine it gains nothing (GraphMVP-C, batch 32 as 2 x 16: 169 against 170 molecules/s in one
# process; speed.md, pretrain_ddp_speed.py): for many cores or GPUs, not for this machine.
[ -n "${PRE_DDP:-}" ] && PRE_EXTRA+=(--strategy ddp --devices "$PRE_DDP" --accelerator cpu)
if [ -n "${NAME:-}" ] && [ "${METHODS//,/}" != "$METHODS" ]; then
    echo "NAME names one method's row; give one method in METHODS" >&2
    exit 2
fi
RESULTS="${RESULTS:-benchmarks/results}"
SEEDS="${SEEDS:-0,1,2}"
# every (dataset, seed) cell of a row already has a result record: nothing to pre-train for
row_done() {
    local ds s
    for ds in ${DATASETS//,/ }; do
        for s in ${SEEDS//,/ }; do
            [ -f "$RESULTS/$PROTOCOL/$1/$ds/seed$s.json" ] || return 1
        done
    done
}
# the encoder dir of a row (a method, or NAME for a variant)
row_dir() { echo "$WORK/pretrain/rows-$1-${MOLS}x${EPOCHS_PRE}"; }
finetune_row() {
    "$FEWMOL" bench "$PROTOCOL" --methods "$1" --pretrained "$1=$2" \
        --seeds "$SEEDS" --datasets "$DATASETS" --precision "$PRECISION" \
        --out "$RESULTS" --work "$WORK" "${EXTRA[@]}"
}
skipped=()
for m in ${METHODS//,/ }; do
    row="${NAME:-$m}"
    out="$(row_dir "$row")"
    if row_done "$row"; then
        echo "$row: every cell of $DATASETS x seeds $SEEDS has a record; skipped"
        continue
    fi
    mkdir -p "$(dirname "$out")"
    # FROM=DIR: a longer run of a finished one starts from a copy of it (its --resume then
    # trains the missing epochs; per-epoch seeding makes that equal to one long run) instead
    # of re-training the epochs it has; the copy lands whole or not at all
    if [ -n "${FROM:-}" ] && [ ! -e "$out" ]; then
        tmp="$(mktemp -d "$out.from.XXXXXX")"
        cp -a "$FROM/." "$tmp/"
        mv -T "$tmp" "$out" 2>/dev/null || rm -rf "$tmp"
    fi
    # flock -n: another worker is pre-training this method; come back to its cells at the end
    if ! flock -n "$out.lock" "$FEWMOL" pretrain --method "$m" --data moses \
        --max-molecules "$MOLS" --epochs "$EPOCHS_PRE" --batch-size "$BATCH" --seed 0 \
        --precision "$PRECISION" --workers "${PRE_WORKERS:-1}" --out "$out" --resume --quiet \
        --featurizer "$FEATURIZER" "${PRE_EXTRA[@]}"; then
        if ! flock -n "$out.lock" true; then
            echo "$row: another worker is pre-training it; its cells wait for the end of this list"
            skipped+=("$m")
            continue
        fi
        echo "$row: pre-training failed" >&2
        exit 1
    fi
    finetune_row "$row" "$out"
done
# Second pass: wait (at most JOIN_WAIT_S, default 15 min: a 2D pre-training's length) for the
# other worker's pre-training to end, then share its fine-tuning cells (each cell is locked by
# the worker running it). JOIN_WAIT_S=0 for rows whose pre-training takes hours (GraphMVP):
# the worker then goes on with the queue instead of idling.
for m in "${skipped[@]}"; do
    row="${NAME:-$m}"
    out="$(row_dir "$row")"
    if ! flock -w "${JOIN_WAIT_S:-900}" "$out.lock" true; then
        echo "$row: still pre-training after ${JOIN_WAIT_S:-900} s; its cells are left to that worker"
        continue
    fi
    if ! "${PYTHON:-.venv/bin/python}" -c 'import json, sys
sys.exit(0 if json.load(open(sys.argv[1])).get("complete") else 1)' "$out/config.json" 2>/dev/null
    then
        echo "$row: its pre-training did not complete; left to the next run"
        continue
    fi
    finetune_row "$row" "$out"
done
