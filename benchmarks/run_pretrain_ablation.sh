#!/usr/bin/env bash
# GraphMVP ablation (issue 5): contrastive loss EBM-NCE vs InfoNCE, and the generative loss
# VRR on / off (and plain RR), each pre-trained on the same fixed-seed MOSES sample with the
# same conformers and budget, then fine-tuned on the six small classification sets under the
# "none" row's protocol (scaffold split, seeds 0,1,2, 100 epochs unless EPOCHS_FT is set).
# Rows are named ablation-<contrastive>-<generative>; the pre-training budget of each is read
# from its encoder dir into every record. Resumable end to end: rerun after any stop (a
# finished pre-training is reused, a stopped one continues, finished cells are skipped).
#   MOLS=50000 EPOCHS_PRE=10 NUM_CONFS=1 nohup benchmarks/run_pretrain_ablation.sh \
#       > benchmarks/logs/ablation.log 2>&1 &
# Cost on 2 CPU cores (speed.md: GraphMVP ~100 mol/s at batch 32): 50k x 10 epochs ~1.5 h per
# variant, then 4 variants x 6 datasets x 3 seeds of fine-tuning (~4 h per variant); on a GPU
# the whole grid fits one session. Set MOLS / EPOCHS_PRE / EPOCHS_FT smaller for a quick look
# (they are recorded beside every number).
set -euo pipefail
cd "$(dirname "$0")/.."
export FEWMOL_DATA="${FEWMOL_DATA:-$(cd .. && pwd)/shared/data}"
export FEWMOL_CACHE="${FEWMOL_CACHE:-$PWD/benchmarks/work/cache}"
FEWMOL="${FEWMOL:-.venv/bin/fewmol}"
MOLS="${MOLS:-50000}"
EPOCHS_PRE="${EPOCHS_PRE:-10}"
DATASETS="${DATASETS:-bbbp,tox21,toxcast,sider,clintox,bace}"
VARIANTS="${VARIANTS:-ebm_nce:vrr infonce:vrr ebm_nce:none ebm_nce:rr}"
pretrained=()
methods=()
for v in $VARIANTS; do
    c="${v%%:*}"
    g="${v##*:}"
    name="ablation-${c//_/}-${g}"
    out="${WORK:-benchmarks/work}/pretrain/${name}-${MOLS}x${EPOCHS_PRE}"
    "$FEWMOL" pretrain --method graphmvp --data moses --max-molecules "$MOLS" \
        --num-confs "${NUM_CONFS:-5}" --epochs "$EPOCHS_PRE" --batch-size 32 --seed 0 \
        --contrastive "$c" --generative "$g" --workers 2 --out "$out" --resume --quiet
    pretrained+=("${name}=${out}")
    methods+=("$name")
done
EXTRA=()
[ -n "${EPOCHS_FT:-}" ] && EXTRA+=(--epochs "$EPOCHS_FT")
"$FEWMOL" bench classification --methods "$(IFS=,; echo "${methods[*]}")" \
    --pretrained "$(IFS=,; echo "${pretrained[*]}")" --seeds "${SEEDS:-0,1,2}" --datasets "$DATASETS" \
    --out "${RESULTS:-benchmarks/results}" --work "${WORK:-benchmarks/work}" "${EXTRA[@]}"
