"""Classical baseline beside every run: a random forest on Morgan counts + RDKit 2D descriptors.

Trained on the same split as the GNN (train part only; one forest per task on its observed
labels) and scored with the same metrics, so ``metrics.json`` shows whether the GNN beats it.
Only the scores and the per-molecule predictions are kept: a 500-tree forest is tens of MB per
task and slow to evaluate in numpy on a million rows, and its role is comparison, not
deployment (``fewmol predict`` uses the GNN). ``fewmol bench`` can call :func:`rf_baseline`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from fewmol.chem.fingerprints import (
    FP_BITS,
    FP_RADIUS,
    descriptor_names,
    morgan_counts,
    rdkit_descriptors,
)
from fewmol.data.splits import Split
from fewmol.data.tables import Table
from fewmol.finetune.metrics import evaluate

BASELINES = ("none", "rf")
RF_TREES = 500
#: the RF's input, as a featuriser name in records and tables
RF_FEATURES = "morgan-counts+rdkit-2d"
_CHUNK = 512


def _features_chunk(smiles: list[str]) -> np.ndarray:
    return np.concatenate([morgan_counts(smiles), rdkit_descriptors(smiles)], axis=1)


def rf_features(smiles: Sequence[str], workers: int = 1) -> np.ndarray:
    """Morgan count fingerprint (radius 2, 2048) + RDKit 2D descriptors: float32 (n, 2048 + D)."""
    smiles = list(smiles)
    chunks = [smiles[i : i + _CHUNK] for i in range(0, len(smiles), _CHUNK)]
    if not chunks:
        return np.zeros((0, FP_BITS + len(descriptor_names())), np.float32)
    if workers > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_features_chunk, chunks))
    else:
        parts = [_features_chunk(c) for c in chunks]
    return np.concatenate(parts)


def rf_baseline(
    table: Table,
    split: Split,
    seed: int = 0,
    trees: int = RF_TREES,
    workers: int = 1,
    features: np.ndarray | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """Fit the RF baseline on ``split.train``; return (scores dict, predictions (n_kept, T)).

    The dict has ``valid`` and ``test`` metrics (same metric functions as the GNN), the
    features, forest size, seed and wall time.
    """
    t0 = time.time()
    if table.targets is None or table.task_type is None:
        raise ValueError("the RF baseline needs labelled data")
    x = rf_features(table.smiles, workers) if features is None else features
    y = table.targets.astype(np.float64)
    preds = np.full(y.shape, np.nan)
    for t in range(y.shape[1]):
        preds[:, t] = _fit_task(table.task_type, x, split.train, y[:, t], seed, trees, workers)
    out: dict[str, Any] = {
        "method": "rf",
        "features": f"Morgan counts (radius {FP_RADIUS}, {FP_BITS}) + "
        f"{len(descriptor_names())} RDKit 2D descriptors",
        "n_estimators": trees,
        "seed": seed,
    }
    for part in ("train", "valid", "test"):
        idx = getattr(split, part)
        if len(idx):
            out[part] = evaluate(table.task_type, y[idx], preds[idx])
    out["wall_time_s"] = round(time.time() - t0, 2)
    return out, preds.astype(np.float32)


def _fit_task(
    task_type: str,
    x: np.ndarray,
    train: np.ndarray,
    y: np.ndarray,
    seed: int,
    trees: int,
    workers: int,
) -> np.ndarray:
    """Fit one task on the training rows and predict all rows."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    yt = y[train]
    seen = ~np.isnan(yt)
    xs, ys = x[train][seen], yt[seen]
    if task_type == "classification":
        if not len(ys) or ys.min() == ys.max():
            # one class in training: a forest could only repeat it; use the base rate
            return np.full(len(x), float(ys.mean()) if len(ys) else 0.5)
        rf = RandomForestClassifier(
            n_estimators=trees, max_features="sqrt", n_jobs=workers, random_state=seed
        )
        rf.fit(xs, ys.astype(int))
        return rf.predict_proba(x)[:, list(rf.classes_).index(1)]
    if not len(ys):
        return np.full(len(x), np.nan)
    # a third of the features per split (Breiman's regression default); 1.0 is ~10x slower
    rf = RandomForestRegressor(
        n_estimators=trees, max_features=0.33, n_jobs=workers, random_state=seed
    )
    rf.fit(xs, ys)
    return rf.predict(x)
