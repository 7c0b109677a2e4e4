#!/usr/bin/env bash
# Run benchmarks/queue.txt (or QUEUE=file) line by line: each line is a resumable, lock-shared
# grid command, so start one 1-thread worker per core and they split the plan between them:
#   OMP_NUM_THREADS=1 nohup benchmarks/run_queue.sh > benchmarks/logs/q1.log 2>&1 &
#   sleep 30; OMP_NUM_THREADS=1 nohup benchmarks/run_queue.sh > benchmarks/logs/q2.log 2>&1 &
# The file is read again before each line, so edits reach running workers: each runs the
# first line it has not run yet (an edited line counts as new; a changed budget, e.g. other
# EPOCHS, re-trains those cells, as `fewmol bench` does). A failing line is reported and the
# queue goes on. Results land in benchmarks/results; commit them (and regenerate the report:
# fewmol bench report) as they finish.
set -uo pipefail
cd "$(dirname "$0")/.."
QUEUE="${QUEUE:-benchmarks/queue.txt}"
[ -f "$QUEUE" ] || { echo "error: no queue file $QUEUE" >&2; exit 2; }
ran=()
failed=0
next_line() {
    local line seen
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in ''|'#'*) continue ;; esac
        seen=0
        for r in "${ran[@]}"; do [ "$r" = "$line" ] && { seen=1; break; }; done
        [ "$seen" -eq 0 ] && { printf '%s' "$line"; return 0; }
    done < "$QUEUE"
    return 1
}
while line="$(next_line)"; do
    ran+=("$line")
    echo "[$(date -u +%FT%TZ)] queue: $line"
    bash -c "$line" < /dev/null
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "[$(date -u +%FT%TZ)] queue: FAILED (exit $rc): $line" >&2
        failed=$((failed + 1))
    fi
done
echo "[$(date -u +%FT%TZ)] queue: done, $failed failed lines"
[ "$failed" -eq 0 ]
