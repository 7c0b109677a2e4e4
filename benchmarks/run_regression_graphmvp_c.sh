#!/usr/bin/env bash
# The graphmvp-c regression row: the shipped GraphMVP-C encoder fine-tuned on the budget of
# run_regression_none.sh (same datasets, epochs, seeds and split), so the two rows compare.
# Resumable and lock-shared like it, e.g. on 2 cores:
#   OMP_NUM_THREADS=1 DATASETS=esol,freesolv nohup benchmarks/run_regression_graphmvp_c.sh > benchmarks/logs/rg1.log 2>&1 &
# Results of a re-shipped (longer pre-trained) checkpoint must not be mixed with older ones:
# move benchmarks/results/regression/graphmvp-c away before rerunning.
set -euo pipefail
METHODS=graphmvp-c exec "$(dirname "$0")/run_regression_none.sh" "$@"
