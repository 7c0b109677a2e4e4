"""Hyperparameter search for fine-tuning: seeded random trials on one split, best by validation.

The paper protocol fixes lr 1e-3, dropout 0.5 and batch 32 for every dataset; on a user's few
hundred labels other settings often do better. Each trial fine-tunes a full model dir
(``DIR/trials/trial<k>/``) on the same split with settings drawn from :data:`SPACE`, the trial
with the best validation score wins (the test split is never used to choose), and its model
dir is copied to ``DIR`` so ``predict DIR`` uses it. ``DIR/trials.csv`` lists every trial's
settings and scores; ``DIR/tune.json`` the search and the winner. Resumable trial by trial.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fewmol.finetune.metrics import is_better
from fewmol.finetune.run import FinetuneConfig
from fewmol.io.checkpoint import write_json, write_text

# name -> ("log", low, high) | ("choice", values): what each trial draws
SPACE: dict[str, tuple] = {
    "lr": ("log", 1e-4, 3e-3),
    "dropout": ("choice", (0.0, 0.1, 0.2, 0.3, 0.5)),
    "weight_decay": ("choice", (0.0, 1e-5, 1e-4)),
    "batch_size": ("choice", (16, 32, 64)),
}
TRIALS_FILE = "trials.csv"
TUNE_FILE = "tune.json"


def sample_trials(n: int, seed: int, space: dict[str, tuple] = SPACE) -> list[dict[str, Any]]:
    """``n`` settings drawn with a seeded generator; trial 0 is the base config (no changes)."""
    rng = np.random.default_rng([seed, 7919])  # not the training seed's stream
    trials: list[dict[str, Any]] = [{}]
    for _ in range(n - 1):
        params: dict[str, Any] = {}
        for name, spec in space.items():
            if spec[0] == "log":
                v = math.exp(rng.uniform(math.log(spec[1]), math.log(spec[2])))
                params[name] = float(f"{v:.3g}")
            else:
                params[name] = spec[1][int(rng.integers(len(spec[1])))]
        trials.append(params)
    return trials


def trial_dir(out: Path, k: int) -> Path:
    """Model dir of trial ``k``."""
    return Path(out) / "trials" / f"trial{k:03d}"


def run_search(
    base: FinetuneConfig,
    trials: list[dict[str, Any]],
    out: Path,
    train: Callable[[FinetuneConfig, Path], dict[str, Any]],
    on_trial: Callable[[int, dict[str, Any], dict[str, Any]], None] | None = None,
) -> dict[str, Any] | None:
    """Run every trial with ``train(cfg, dir)``; copy the best (by validation) to ``out``.

    ``train`` returns the run's metrics dict (empty on non-zero DDP ranks: returns None).
    """
    rows: list[dict[str, Any]] = []
    best_k, best_valid, metric = None, None, None
    for k, params in enumerate(trials):
        cfg = dataclasses.replace(base, **params)
        metrics = train(cfg, trial_dir(out, k))
        if not metrics:
            return None
        metric = metrics["select_metric"]
        valid = metrics["best_valid"].get(metric)
        test = metrics["test_at_best_valid"].get(metric)
        setting = {name: getattr(cfg, name) for name in SPACE}
        rows.append({"trial": k, **setting, f"valid_{metric}": valid, f"test_{metric}": test})
        write_text(out / TRIALS_FILE, pd.DataFrame(rows).to_csv(index=False))
        if valid is not None and is_better(metric, valid, best_valid):
            best_k, best_valid = k, valid
        if on_trial:
            on_trial(k, setting, metrics)
    if best_k is None:
        best_k = 0  # no trial had a validation score (no valid split): keep the base config
    _copy_model(trial_dir(out, best_k), out)
    summary = {
        "trials": len(trials),
        "select_metric": metric,
        "space": {name: list(spec) for name, spec in SPACE.items()},
        "best_trial": best_k,
        "best_settings": {k: v for k, v in rows[best_k].items() if k in SPACE},
        "best_valid": rows[best_k][f"valid_{metric}"],
        "test_of_best": rows[best_k][f"test_{metric}"],
        "note": "the winner is chosen on the validation split; its test score is reported, "
        "not used",
    }
    write_json(out / TUNE_FILE, summary)
    return summary


def _copy_model(src: Path, dst: Path) -> None:
    """The winning trial's model dir files into ``dst`` (not its resume checkpoints)."""
    for item in src.iterdir():
        if item.name == "checkpoints":
            continue
        target = dst / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)
