"""How much of a multi-task model's predictions is one score per molecule shared by all tasks.

For each finished benchmark cell (``fewmol bench multitask`` model dirs under WORK), reads
``predictions.csv`` (every molecule x task), takes the logit of each prediction, removes each
task's mean, and reports the share of the remaining variance that the per-molecule mean over
tasks explains. An MTL model (one linear head per task) sits near 1/T plus what the tasks
really share; a head that predicts "this molecule is active everywhere" sits near 1. No
training; reads files only. Writes ``benchmarks/results/multitask_shared_factor.md``.

Usage: python benchmarks/multitask_shared_factor.py [--work benchmarks/work] [--dataset chembl-10]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent / "speed"))
from _record import provenance  # noqa: E402

from fewmol.bench.multitask import BENCH_METHODS, EXTRA_METHODS  # noqa: E402

ROOT = Path(__file__).resolve().parent
PAGE = ROOT / "results" / "multitask_shared_factor.md"
# every row of the multi-task table; STL's one-task models share no head, so it is left out
METHODS = tuple(m for m in (*BENCH_METHODS, *EXTRA_METHODS) if m != "stl")


def shared_share(pred: np.ndarray) -> float:
    """Share of the task-centred logit variance explained by each molecule's mean over tasks."""
    p = np.clip(pred, 1e-6, 1 - 1e-6)
    logit = np.log(p) - np.log1p(-p)
    logit = logit - logit.mean(0, keepdims=True)
    mol = logit.mean(1, keepdims=True)
    total = float(logit.var())
    return 1.0 - float((logit - mol).var()) / total if total > 0 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="benchmarks/work")
    ap.add_argument("--dataset", default="chembl-10")
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    work = Path(args.work) / "multitask"
    rows = []
    for method in args.methods.split(","):
        shares = {}
        for d in sorted((work / method / args.dataset).glob("seed*")):
            f = d / "predictions.csv"
            if not f.exists():
                continue
            df = pd.read_csv(f)
            cols = [c for c in df.columns if c.endswith("_pred")]
            shares[int(d.name.removeprefix("seed"))] = shared_share(df[cols].to_numpy(float))
        if shares:
            vals = " ".join(f"{shares[s]:.2f}" for s in sorted(shares))
            rows.append(
                f"| {method} | {len(shares)} | {np.mean(list(shares.values())):.2f} | {vals} |"
            )
    cmd = (
        f"python benchmarks/multitask_shared_factor.py --work {args.work} --dataset {args.dataset}"
        + ("" if args.methods == ",".join(METHODS) else f" --methods {args.methods}")
    )
    body = (
        f"# One score per molecule in the multi-task predictions ({args.dataset})\n\n"
        "Share of each model's task-centred prediction logits (every molecule of the set, "
        "`predictions.csv` of the benchmark cell) that the per-molecule mean over tasks explains. "
        "Near 1: the model mostly ranks molecules the same way for every task; a per-task "
        "ROC-AUC then rises or falls with how well that single ranking suits each task.\n\n"
        "| method | seeds | mean share | per seed |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n"
        + provenance(cmd)
        + "\n"
    )
    PAGE.write_text(body)
    print(body)


if __name__ == "__main__":
    main()
