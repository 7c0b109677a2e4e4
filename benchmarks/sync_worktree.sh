#!/usr/bin/env bash
# Move a benchmark worktree (default /work/bench) to main's HEAD without losing results: every
# result file it changed or added must already be identical in main (copy them over and commit
# first); otherwise nothing is done. Running workers are unaffected (Python loaded its code).
#   benchmarks/sync_worktree.sh [/work/bench]
# (benchmarks/collect_results.sh copies the results over first, never an older copy of a page)
set -euo pipefail
WT="${1:-/work/bench}"
MAIN="$(cd "$(dirname "$0")/.." && pwd)"
cd "$WT"
stale=0
while IFS= read -r f; do
    [ -f "$f" ] || continue
    if ! cmp -s "$f" "$MAIN/$f"; then
        case "$f" in
            benchmarks/results/*README.md|benchmarks/results/plots/*|*/plots/*) ;;  # regenerated
            benchmarks/results/learning_curve.md) ;;  # regenerated (learning_curve.py --report-only)
            *) echo "not in main yet: $f" >&2; stale=1 ;;
        esac
    fi
done < <(git status --porcelain --untracked-files=all | awk '{print $NF}')
[ "$stale" -eq 0 ] || { echo "copy these into $MAIN, commit, then run again" >&2; exit 1; }
git checkout -q -f --detach "$(git -C "$MAIN" rev-parse HEAD)"
git log --oneline -1
