"""K-fold cross-validation: a model per fold, out-of-fold predictions for every molecule.

With a few hundred labels one scaffold split tests on a few dozen molecules, so its score
swings with the split. Cross-validation tests on every molecule once: fold k's model dir
(``DIR/fold<k>/``, a full model dir) is trained without fold k's molecules and predicts them.
``DIR/oof_predictions.csv`` gathers those out-of-fold predictions in input order, and
``DIR/cv_summary.json`` holds the per-fold test scores (mean ± std) and the score of the
pooled out-of-fold predictions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fewmol.data.splits import Split
from fewmol.data.tables import Table
from fewmol.finetune.metrics import evaluate
from fewmol.io.checkpoint import write_json, write_text

OOF_FILE = "oof_predictions.csv"
SUMMARY_FILE = "cv_summary.json"


def fold_dir(out: Path, k: int) -> Path:
    """Model dir of fold ``k`` (0-based)."""
    return Path(out) / f"fold{k}"


def out_of_fold(table: Table, splits: list[Split], dirs: list[Path]) -> pd.DataFrame:
    """Every fold's test rows from its predictions.csv, with a ``fold`` column, in row order."""
    frames = []
    for k, (split, d) in enumerate(zip(splits, dirs)):
        pred = pd.read_csv(d / "predictions.csv")
        test = pred[pred["split"] == "test"].drop(columns="split")
        if len(test) != len(split.test):
            raise RuntimeError(
                f"{d}/predictions.csv has {len(test)} test rows, not {len(split.test)}"
            )
        test.insert(1, "fold", k)
        frames.append(test)
    return pd.concat(frames).sort_values("row").reset_index(drop=True)


def summarize_folds(
    table: Table, splits: list[Split], dirs: list[Path], metrics: list[dict[str, Any]]
) -> dict[str, Any]:
    """Per-fold scores (mean ± std), the pooled out-of-fold score; writes both files."""
    from fewmol.finetune.run import summarize_seeds

    out = Path(dirs[0]).parent
    oof = out_of_fold(table, splits, dirs)
    write_text(out / OOF_FILE, oof.to_csv(index=False))
    y = np.stack([oof[name].to_numpy(np.float64) for name in table.target_names], axis=1)
    p = np.stack([oof[f"{name}_pred"].to_numpy(np.float64) for name in table.target_names], 1)
    summary = summarize_seeds(metrics)
    summary.pop("seeds", None)
    summary.pop("n_seeds", None)
    summary.update(
        {
            "n_folds": len(splits),
            "split": splits[0].kind.split("-kfold")[0],
            "fold_sizes": [s.sizes() for s in splits],
            "out_of_fold": evaluate(table.task_type, y, p),
            "n_out_of_fold": int(len(oof)),
            "fold_dirs": [Path(d).name for d in dirs],
        }
    )
    write_json(out / SUMMARY_FILE, summary)
    return summary
