#!/usr/bin/env bash
# GraphMVP loss ablation (issue 5), one command: EBM-NCE vs InfoNCE and VRR on / off. Each row is
# pre-trained with the same data and budget (the fixed-seed 50k MOSES sample, one ETKDG conformer
# per molecule, batch 32, 7 epochs, hu2019 features, bf16-mixed) and differs only in the losses
# its name says:
#   graphmvp          EBM-NCE + VRR (the reference; the same encoder as the graphmvp table row)
#   graphmvp-infonce  InfoNCE + VRR
#   graphmvp-no-vrr   EBM-NCE alone (alpha2 has nothing to weigh)
#   graphmvp-rr       EBM-NCE + plain representation reconstruction (not in the default VARIANTS)
# then fine-tuned on the six small classification sets under the "none" row's protocol (scaffold
# split, seeds 0,1,2): BBBP, SIDER, ClinTox and BACE at 100 epochs for every row first, then
# Tox21 and ToxCast at EPOCHS_BIG (default 30: a third of the cost, ~40 instead of ~130 worker-min
# per row and set on one thread), which every cell shows as [30 ep]. `fewmol bench report` puts
# the rows side by side with their per-seed gaps to graphmvp in the "GraphMVP loss ablation"
# section of benchmarks/results/classification/README.md. SMALL= or BIG= (empty) skips a stage.
#   OMP_NUM_THREADS=1 nohup benchmarks/run_pretrain_ablation.sh > benchmarks/logs/ablation.log 2>&1 &
# Resumable and shareable like run_pretrain_rows.sh, which does the work: rerun after any stop;
# a second worker started beside the first pre-trains the next row instead of waiting.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS_SCRIPT="${ROWS_SCRIPT:-benchmarks/run_pretrain_rows.sh}"
VARIANTS="${VARIANTS:-graphmvp,graphmvp-infonce,graphmvp-no-vrr}"
SMALL="${SMALL-bbbp,sider,clintox,bace}"
BIG="${BIG-tox21,toxcast}"
EPOCHS_BIG="${EPOCHS_BIG:-30}"
loss_args() {
    case "$1" in
        graphmvp) echo "" ;;
        graphmvp-infonce) echo "--contrastive infonce" ;;
        graphmvp-no-vrr) echo "--generative none" ;;
        graphmvp-rr) echo "--generative rr" ;;
        *) return 1 ;;
    esac
}
for v in ${VARIANTS//,/ }; do
    loss_args "$v" > /dev/null || {
        echo "unknown ablation row '$v' (graphmvp, graphmvp-infonce, graphmvp-no-vrr, graphmvp-rr)" >&2
        exit 2
    }
done
# stage: datasets, fine-tuning epochs ("" = the protocol's 100)
for stage in "$SMALL:" "$BIG:$EPOCHS_BIG"; do
    datasets="${stage%%:*}"
    [ -n "$datasets" ] || continue
    for v in ${VARIANTS//,/ }; do
        name=""
        [ "$v" = graphmvp ] || name="$v"
        NAME="$name" METHODS=graphmvp BATCH=32 JOIN_WAIT_S="${JOIN_WAIT_S:-0}" \
            DATASETS="$datasets" EPOCHS_FT="${stage#*:}" \
            PRETRAIN_ARGS="--num-confs 1 $(loss_args "$v")" bash "$ROWS_SCRIPT"
    done
done
