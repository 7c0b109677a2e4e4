"""Evaluation metrics with missing labels (NaN) masked per task."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

CLASSIFICATION_METRICS = ("roc_auc", "prc_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2")
HIGHER_IS_BETTER = {
    "roc_auc": True,
    "prc_auc": True,
    "rmse": False,
    "mae": False,
    "r2": True,
    "mse": False,
    "loss": False,
}


def _check(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim == 1:
        y_true = y_true[:, None]
    if y_pred.ndim == 1:
        y_pred = y_pred[:, None]
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred shapes differ: got {y_true.shape} and {y_pred.shape}")
    return y_true, y_pred


def binary_roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC of 0/1 labels (both present) as the Mann-Whitney U statistic, ties counted half.

    Equals sklearn's ``roc_auc_score`` (a test checks it) at a fraction of its per-call cost,
    which dominated evaluation of many-task sets (ToxCast's 617 tasks: seconds per epoch).
    """
    from scipy.stats import rankdata  # scipy.stats takes ~1 s to import: not at CLI start-up

    pos = y > 0.5
    n_pos = int(pos.sum())
    n_neg = y.size - n_pos
    u = rankdata(score)[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def binary_average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision (sklearn's definition: Σ (R_k − R_k−1) P_k over distinct thresholds)."""
    order = np.argsort(-score, kind="mergesort")
    s, hit = score[order], (y[order] > 0.5)
    # the last position of each run of equal scores is one threshold
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(hit)[last]
    precision = tps / (last + 1.0)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def per_task_classification(
    y_true: np.ndarray,
    y_score: np.ndarray,
    roc_auc: Callable[[np.ndarray, np.ndarray], float] = binary_roc_auc,
    average_precision: Callable[[np.ndarray, np.ndarray], float] = binary_average_precision,
) -> dict[str, list]:
    """ROC-AUC and PRC-AUC per task; NaN for tasks without both classes present.

    ``roc_auc`` / ``average_precision`` score one task's labels and scores (the speed
    benchmark passes sklearn's functions here).
    """
    y_true, y_score = _check(y_true, y_score)
    roc, prc = [], []
    for t in range(y_true.shape[1]):
        m = ~np.isnan(y_true[:, t])
        yt = y_true[m, t]
        if m.sum() == 0 or yt.min() == yt.max():
            roc.append(float("nan"))
            prc.append(float("nan"))
            continue
        roc.append(float(roc_auc(yt, y_score[m, t])))
        prc.append(float(average_precision(yt, y_score[m, t])))
    return {"roc_auc": roc, "prc_auc": prc}


def classification_metrics(y_true: np.ndarray, y_score: np.ndarray) -> dict[str, float]:
    """Mean ROC-AUC / PRC-AUC over tasks with both classes, and how many tasks were used."""
    per = per_task_classification(y_true, y_score)
    roc = np.asarray(per["roc_auc"])
    used = ~np.isnan(roc)
    return {
        "roc_auc": float(roc[used].mean()) if used.any() else float("nan"),
        "prc_auc": float(np.asarray(per["prc_auc"])[used].mean()) if used.any() else float("nan"),
        "n_tasks_scored": int(used.sum()),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² over all observed labels (tasks averaged after per-task scores)."""
    from sklearn.metrics import r2_score  # sklearn.metrics: imported on use, not at start-up

    y_true, y_pred = _check(y_true, y_pred)
    rmse, mae, r2 = [], [], []
    for t in range(y_true.shape[1]):
        m = ~np.isnan(y_true[:, t])
        if m.sum() == 0:
            continue
        err = y_pred[m, t] - y_true[m, t]
        rmse.append(float(np.sqrt(np.mean(err**2))))
        mae.append(float(np.mean(np.abs(err))))
        r2.append(float(r2_score(y_true[m, t], y_pred[m, t])) if m.sum() > 1 else float("nan"))
    nan = float("nan")
    return {
        "rmse": float(np.mean(rmse)) if rmse else nan,
        "mae": float(np.mean(mae)) if mae else nan,
        "r2": float(np.nanmean(r2)) if r2 and not np.all(np.isnan(r2)) else nan,
        "n_tasks_scored": len(rmse),
    }


def evaluate(task_type: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Metrics for ``task_type`` (classification: y_pred are probabilities)."""
    if task_type == "classification":
        return classification_metrics(y_true, y_pred)
    if task_type == "regression":
        return regression_metrics(y_true, y_pred)
    raise ValueError(f"task_type must be classification or regression, got {task_type!r}")


def is_better(metric: str, new: float, best: float | None) -> bool:
    """Whether ``new`` improves on ``best`` for ``metric`` (NaN never improves)."""
    if new != new:  # NaN
        return False
    if best is None or best != best:
        return True
    return new > best if HIGHER_IS_BETTER[metric] else new < best
