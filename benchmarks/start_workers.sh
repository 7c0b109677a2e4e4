#!/usr/bin/env bash
# Start the benchmark workers on a fresh or a running machine, in one command:
#   benchmarks/start_workers.sh [QUEUE_FILE] [WORKERS]
# Makes the benchmark worktree (default /work/bench, BENCH_WT=DIR) at this checkout's HEAD if
# it is missing, its venv (`make setup`), and starts WORKERS (default 2: one per core of this
# machine) 1-thread benchmarks/run_queue.sh workers on QUEUE_FILE (default: this checkout's
# benchmarks/queue.txt, read again before every line), 45 s apart so that they split the first
# line's cells. Does nothing but report when workers are already running. Logs:
# WT/benchmarks/logs/<UTC time>-q<k>.log. Results land in WT/benchmarks/results: copy them
# into this checkout and commit (benchmarks/sync_worktree.sh refuses to move WT until then).
set -euo pipefail
MAIN="$(cd "$(dirname "$0")/.." && pwd)"
WT="${BENCH_WT:-/work/bench}"
QUEUE="$(realpath "${1:-$MAIN/benchmarks/queue.txt}")"
WORKERS="${2:-2}"
[ -f "$QUEUE" ] || { echo "error: no queue file $QUEUE" >&2; exit 2; }
running="$(pgrep -fc 'benchmarks/run_queue.sh' || true)"
if [ "${running:-0}" -gt 0 ]; then
    echo "$running queue worker(s) already running; nothing started:"
    pgrep -fa 'benchmarks/run_queue.sh'
    exit 0
fi
if [ ! -d "$WT" ]; then
    git -C "$MAIN" worktree prune
    git -C "$MAIN" worktree add --detach "$WT" HEAD
fi
cd "$WT"
make setup > /dev/null
mkdir -p benchmarks/logs
stamp="$(date -u +%Y%m%dT%H%M)"
for k in $(seq 1 "$WORKERS"); do
    [ "$k" -gt 1 ] && sleep 45
    QUEUE="$QUEUE" OMP_NUM_THREADS=1 nohup benchmarks/run_queue.sh \
        > "benchmarks/logs/$stamp-q$k.log" 2>&1 < /dev/null &
    echo "worker $k: pid $!, log $WT/benchmarks/logs/$stamp-q$k.log"
done
echo "queue: $QUEUE; worktree: $WT at $(git log --oneline -1)"
