#!/usr/bin/env bash
# Bring the benchmark worktree's results (default /work/bench) into this checkout and rebuild the
# pages: copies only files that are missing here or newer there (`cp -u`), so a page this
# checkout changed since the worktree last moved (speed.md, a README) is not overwritten by the
# worktree's older copy; then `fewmol bench report`, the learning-curve and the gains-by-set
# pages. Commit after it, then run benchmarks/sync_worktree.sh.
#   benchmarks/collect_results.sh [/work/bench]
set -euo pipefail
WT="${1:-/work/bench}"
MAIN="$(cd "$(dirname "$0")/.." && pwd)"
cd "$MAIN"
cp -a -u "$WT/benchmarks/results/." benchmarks/results/
export FEWMOL_DATA="${FEWMOL_DATA:-$(cd .. && pwd)/shared/data}"
.venv/bin/fewmol bench report > /dev/null
.venv/bin/python benchmarks/learning_curve.py --report-only > /dev/null
.venv/bin/python benchmarks/gains_by_set.py > /dev/null
# a page whose only change is its provenance line (the time of this rebuild) stays as it was
for page in benchmarks/results/learning_curve.md benchmarks/results/gains_by_set.md; do
    if git diff --quiet -I '^Command: ' -- "$page"; then git checkout -q -- "$page"; fi
done
git status --short -- benchmarks/results
