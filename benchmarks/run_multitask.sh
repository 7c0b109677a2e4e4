#!/usr/bin/env bash
# REFERENCE B (the SGNN-EBM table) on our multi-task sets: the nine rows stl, mtl, uw, gradnorm,
# dwa, lbtw, sgnn, sgnn-ebm-fixed, sgnn-ebm (SGNN-EBM with fixed / adaptive noise), random 8-1-1
# split over molecules per seed, seeds 0-4, test ROC-AUC averaged over tasks; the paper's rows
# sit beside our ChEMBL stand-ins (chembl-10, chembl-50-m10, chembl-100-m5), not beside kiba-mt
# or toxcast. Resumable: rerun the same command after any stop; finished cells are skipped and
# an unfinished cell continues from its last epoch (seed by seed, so a partial table has every
# row). Several workers may share the grid (each cell is locked by the worker running it), e.g.
# on 2 cores, one thread each:
#   OMP_NUM_THREADS=1 nohup benchmarks/run_multitask.sh > benchmarks/logs/mt1.log 2>&1 &
#   OMP_NUM_THREADS=1 METHODS=sgnn-ebm,sgnn-ebm-fixed,sgnn,lbtw,dwa,gradnorm,uw,mtl,stl \
#       nohup benchmarks/run_multitask.sh > benchmarks/logs/mt2.log 2>&1 &
# INIT=DIR (a `fewmol pretrain` dir) runs every method from that encoder (rows METHOD@NAME);
# FEATURIZER=ogb trains from scratch on OGB features (rows METHOD+ogb), the baseline of an
# encoder pre-trained on them (INIT=graphmvp, the shipped GraphMVP-C on OGB features).
#
# Time per cell, from 1- and 2-epoch cells with OMP_NUM_THREADS=1 on this 2-core machine while
# a pre-training job ran beside them (load 5-6; an idle core is faster), default model (GIN
# 5 x 300, SGNN 64/64, 4 NCE samples, Gibbs 20 sweeps x 4 chains); seconds per epoch with its
# valid/test evaluation, from train_log.csv, times 100 epochs:
#   chembl-50-m10 (106 mols x 12 tasks):   mtl 0.85 s, sgnn-ebm 1.1 s, stl 7.7 s (12 one-task
#                                          models)  -> ~1.5 / ~2 / <13 min per cell
#   chembl-10     (336 x 146):             mtl 3.5 s, sgnn-ebm 6.1 s, stl 36 s (146 models)
#                                          -> ~6 / ~10 / <60 min per cell
#   chembl-100-m5 (1,118 x 31):            mtl 5.6 s, sgnn-ebm 8.6 s, stl 44 s (31 models)
#                                          -> ~10 / ~15 / <75 min per cell
#   kiba-mt       (2,068 x 229, 1,736 task-graph edges): mtl 12 s, sgnn-ebm 205 s per epoch,
#                                          and 3.5 min of Gibbs sampling for predictions.csv
#                                          -> 100 epochs: ~20 min / ~5.7 h per cell
#                                          (sgnn-ebm 60 s per epoch, bf16, at commit 08db9a1
#                                          after the folded edge readout, slice-add label sums
#                                          and fewmol.allocator; load ~3 here against 5-6
#                                          for the 205 s: ~1.7 h per 100-epoch cell)
#   toxcast       (8,579 x 617, graph learned per split): mtl 114 s per epoch -> ~3.2 h per
#                                          cell; sgnn-ebm trains 5.4 mol/s in float32 on a
#                                          synthetic 617-task problem with a top-10 graph
#                                          (3,616 edges; `multitask_speed.py --tasks 617
#                                          --topk 10`, 1 thread, load ~2.5, commit ffa26f8):
#                                          ~21 min per epoch + ~3 min of Gibbs evaluation
# Session 13 (commit 92fd344, bf16, 1 thread beside two 1-thread workers): chembl-100-m5 mtl 4 s
# and sgnn-ebm 6 s per epoch; toxcast mtl 25 s per epoch, sgnn-ebm 656 s per epoch with its
# evaluation, then ~10 min of Gibbs sampling for predictions.csv (8,579 molecules), 3.8 GB peak
# RSS (the structured head evaluates in chunks of 65,536 molecule-edge rows; unchunked, the
# predictions at batch 256 took >20 GB and were killed).
# (STL's numbers include a Trainer start per task, amortised over longer runs: upper bounds.
# uw, gradnorm, dwa, lbtw and sgnn were not timed; they train the same GIN as mtl plus a
# weighting or the SGNN head, so expect them between mtl and sgnn-ebm.) The three ChEMBL sets at
# 100 epochs: ~5 h per seed for all nine methods on one thread, ~25 h for five seeds, about
# half that with two workers. kiba-mt and toxcast are therefore not in the default DATASETS;
# DATASETS=kiba-mt trains KIBA_EPOCHS (default 10: ~10 min per sgnn-ebm cell now) and
# DATASETS=toxcast TOXCAST_EPOCHS (default 3: ~6 min per mtl cell, ~1.2 h per sgnn-ebm
# cell in float32 by the estimate above). The epochs are recorded per run and printed
# beside the numbers (`[N ep]`); the paper's budget is 100 epochs.
set -euo pipefail
cd "$(dirname "$0")/.."
export FEWMOL_DATA="${FEWMOL_DATA:-$(cd .. && pwd)/shared/data}"
DATASETS="${DATASETS:-chembl-50-m10,chembl-10,chembl-100-m5}"
METHODS="${METHODS:-stl,mtl,uw,gradnorm,dwa,lbtw,sgnn,sgnn-ebm-fixed,sgnn-ebm}"
SEEDS="${SEEDS:-0,1,2,3,4}"
CHEMBL_EPOCHS="${CHEMBL_EPOCHS:-100}"
KIBA_EPOCHS="${KIBA_EPOCHS:-10}"
TOXCAST_EPOCHS="${TOXCAST_EPOCHS:-3}"
OUT="${OUT:-benchmarks/results}"
WORK="${WORK:-benchmarks/work}"
EXTRA=()
[ -n "${INIT:-}" ] && EXTRA+=(--init "$INIT")
[ -n "${FEATURIZER:-}" ] && EXTRA+=(--featurizer "$FEATURIZER")
# STL_PARTS=K (default 2, one per worker of this 2-core machine): each STL cell in K parts that
# the workers on this grid train side by side, the same models as one run (a lone worker trains
# the parts in turn); STL_PARTS=1 for one stream
EXTRA+=(--stl-parts "${STL_PARTS:-2}")
for ds in ${DATASETS//,/ }; do
    case "$ds" in
        kiba-mt) epochs="$KIBA_EPOCHS" ;;
        toxcast) epochs="$TOXCAST_EPOCHS" ;;
        *) epochs="$CHEMBL_EPOCHS" ;;
    esac
    .venv/bin/fewmol bench multitask --datasets "$ds" --methods "$METHODS" --seeds "$SEEDS" \
        --epochs "$epochs" --out "$OUT" --work "$WORK" "${EXTRA[@]}" "$@"
done
