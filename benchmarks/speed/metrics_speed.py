"""Evaluation metrics: fewmol's masked per-task ROC-AUC / PRC-AUC against sklearn's, per call.

Every fine-tuning epoch scores the train, valid and test predictions; on many-task sets the
per-task metric calls dominated that (ToxCast: 617 tasks). The labels and scores are ToxCast's
own label matrix (missing labels kept missing) with scores from a fixed-seed random generator,
so the work per task is the real one; sklearn's numbers come from the same loop calling
``roc_auc_score`` / ``average_precision_score``. Results must agree (checked here and by
tests/unit/finetune/test_metrics.py).
Usage: python benchmarks/speed/metrics_speed.py [--dataset toxcast] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import provenance, write_section  # noqa: E402
from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: E402

from fewmol.data.load import load_dataset  # noqa: E402
from fewmol.finetune.metrics import per_task_classification  # noqa: E402


def sklearn_per_task(y: np.ndarray, s: np.ndarray) -> dict[str, list]:
    """The same masked loop, scoring each task with sklearn's metrics."""
    return per_task_classification(y, s, roc_auc_score, average_precision_score)


def best_time(fn, y: np.ndarray, s: np.ndarray, repeats: int) -> tuple[float, dict]:
    """Fastest of ``repeats`` calls (seconds) and the call's result."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(y, s)
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="toxcast")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--note", default="", help="Other load on the machine during the run.")
    args = ap.parse_args()
    table, _ = load_dataset(args.dataset, None, None, None)
    y = table.targets.astype(np.float64)
    s = np.random.default_rng(0).random(y.shape)
    n_train, n_valid = int(0.8 * len(y)), len(y) // 10
    parts = (
        ("train (80 %)", slice(0, n_train)),
        ("valid (10 %)", slice(n_train, n_train + n_valid)),
    )
    rows = []
    for part, sl in parts:
        t_ours, ours = best_time(per_task_classification, y[sl], s[sl], args.repeats)
        t_skl, skl = best_time(sklearn_per_task, y[sl], s[sl], args.repeats)
        for key in ("roc_auc", "prc_auc"):
            np.testing.assert_allclose(ours[key], skl[key], rtol=0, atol=1e-12)
        n = sl.stop - sl.start
        rows.append(
            f"| {part} | {n:,} | {t_skl * 1e3:,.0f} | {t_ours * 1e3:,.0f} | {t_skl / t_ours:.1f}x |"
        )
    body = (
        "## Evaluation metrics (`benchmarks/speed/metrics_speed.py`)\n\n"
        f"Masked per-task ROC-AUC + PRC-AUC over {args.dataset}'s {y.shape[1]} tasks (its real "
        "label matrix, missing labels masked; random scores), as every fine-tuning epoch "
        "computes them for its train, valid and test predictions. fewmol ranks scores with "
        "`scipy.stats.rankdata` (ROC-AUC as the Mann-Whitney U) and sorts once per task for "
        "average precision; sklearn's `roc_auc_score` / `average_precision_score` in the same "
        f"loop. Results agree to 1e-12. Best of {args.repeats} calls, 1 process."
        + (f" {args.note}" if args.note else "")
        + "\n\n| rows | molecules | sklearn ms | fewmol ms | speed-up |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n"
        + provenance("python benchmarks/speed/metrics_speed.py " + shlex.join(sys.argv[1:]))
    )
    print(body)
    write_section("metrics", body)


if __name__ == "__main__":
    main()
