"""STL in processes side by side: wall time of `fewmol multitask --method stl` with --stl-jobs 1
(one process, every task in turn) and N (one part of the tasks per process, then the merge),
on the same data, split and seed; checks that both give the same metrics and predictions.
Usage: python benchmarks/speed/stl_jobs_speed.py [--data chembl-10] [--epochs 1] [--jobs 2]
       [--write] [--note TEXT]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402

FEWMOL = str(Path(sys.executable).parent / "fewmol")


def _run(data: str, epochs: int, jobs: int, out: Path) -> float:
    cmd = [FEWMOL, "multitask", data, "--method", "stl", "--epochs", str(epochs), "--seed", "0"]
    cmd += ["--stl-jobs", str(jobs), "--out", str(out), "--quiet", "--accelerator", "cpu"]
    t = time.perf_counter()
    # one torch thread per process in both runs: the single process gets no thread pool edge
    env = {"OMP_NUM_THREADS": "1"}
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, **env})
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="chembl-10")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="Write the section of speed.md.")
    ap.add_argument("--note", default="", help="Conditions of the run, printed under the table.")
    args = ap.parse_args()
    rows, metrics, preds = [], {}, {}
    with tempfile.TemporaryDirectory() as d:
        for jobs in (1, args.jobs):
            out = Path(d) / f"jobs{jobs}"
            wall = _run(args.data, args.epochs, jobs, out)
            m = json.loads((out / "metrics.json").read_text())
            metrics[jobs] = m["test_at_best_valid"]
            preds[jobs] = pd.read_csv(out / "predictions.csv")
            rows.append((jobs, m["n_tasks"], m["n_molecules"], wall))
            print(f"--stl-jobs {jobs}: {wall:.1f} s", flush=True)
    same = metrics[1] == metrics[args.jobs] and preds[1].equals(preds[args.jobs])
    base = rows[0][3]
    lines = [
        "## STL in processes side by side (`benchmarks/speed/stl_jobs_speed.py`)",
        "",
        f"`fewmol multitask {args.data} --method stl --epochs {args.epochs}` (one GIN 5 x 300 "
        "per task, each task's own labelled molecules), one torch thread per process, wall time "
        "of the whole command (featurisation cached, start-up, training, predictions.csv); "
        f"`--stl-jobs {args.jobs}` trains the tasks t mod {args.jobs} = i in process i, each "
        "predicting its own tasks, and merges. Same metrics and predictions in both runs: "
        f"{'yes' if same else 'NO'}.",
        "",
        "| --stl-jobs | tasks | molecules | wall s | speed-up |",
        "|---|---|---|---|---|",
    ]
    for jobs, t, n, wall in rows:
        lines.append(f"| {jobs} | {t} | {n:,} | {wall:.1f} | {base / wall:.2f}x |")
    lines += ["", args.note, ""] if args.note else [""]
    command = "python benchmarks/speed/stl_jobs_speed.py " + shlex.join(sys.argv[1:])
    lines.append(provenance(command.strip()))
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section("stl-jobs", body)
    if not same:
        raise SystemExit("the two runs disagree")


if __name__ == "__main__":
    main()
