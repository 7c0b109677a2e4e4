"""Calibration fitted on the validation split and stored in the model dir (``calibration.json``).

Regression: split-conformal intervals. With a spread estimate (ensemble / MC-dropout std) the
score is the normalised residual |y - mean| / (std + floor), otherwise the absolute residual;
the interval is mean ± q·(std + floor) (or mean ± q), q being the ⌈(n+1)·coverage⌉-th smallest
validation score. Under exchangeability (e.g. a random split) the coverage on new molecules is
at least the target; a scaffold split breaks exchangeability, so the held-out coverage is
measured and stored beside the fit instead of assumed.

Classification: temperature scaling of the mean probability's logit (one T per task,
maximum likelihood on the validation labels) or isotonic regression (a monotone step function,
stored as its knots and applied with ``np.interp``). Nothing is pickled.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from fewmol.errors import ModelFileError
from fewmol.io.checkpoint import FORMAT, FORMAT_VERSION, read_json, write_json

CALIBRATION_FILE = "calibration.json"
CLASSIFICATION_METHODS = ("temperature", "isotonic")
_EPS = 1e-6


# ----------------------------------------------------------------------------- regression


def conformal_quantile(scores: np.ndarray, coverage: float) -> tuple[float, bool]:
    """Split-conformal quantile of ``scores`` and whether the coverage guarantee holds.

    The ⌈(n+1)·coverage⌉-th smallest score; when that rank exceeds n (too few validation
    molecules for the target) the largest score is returned and the guarantee flag is False.
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    n = len(scores)
    if n == 0:
        return float("nan"), False
    k = math.ceil((n + 1) * coverage)
    if k > n:
        return float(scores[-1]), False
    return float(scores[k - 1]), True


def fit_regression_task(
    y: np.ndarray, mean: np.ndarray, std: np.ndarray | None, coverage: float
) -> dict[str, Any]:
    """Conformal calibration of one task from validation labels (NaN = missing) and predictions."""
    seen = ~np.isnan(y)
    y, mean = y[seen], mean[seen]
    if not len(y):
        return {"method": "none", "n": 0, "reason": "no validation labels"}
    resid = np.abs(y - mean)
    if std is None:
        q, ok = conformal_quantile(resid, coverage)
        return {"method": "absolute", "q": q, "n": int(len(y)), "guaranteed": ok}
    std = std[seen]
    # a floor keeps near-zero spreads from giving near-zero intervals
    med = float(np.median(std))
    floor = 0.1 * med if med > 0 else max(float(np.std(y)), 1.0) * 0.1
    q, ok = conformal_quantile(resid / (std + floor), coverage)
    return {
        "method": "normalized",
        "q": q,
        "sigma_floor": floor,
        "n": int(len(y)),
        "guaranteed": ok,
    }


def regression_interval(
    mean: np.ndarray, std: np.ndarray | None, task: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) bounds of one task's calibrated interval (NaN when not calibrated)."""
    method = task.get("method")
    if method == "absolute":
        half = np.full_like(mean, task["q"], dtype=np.float64)
    elif method == "normalized":
        if std is None:
            raise ValueError("this calibration needs a spread (ensemble or MC-dropout std)")
        half = task["q"] * (std + task["sigma_floor"])
    else:
        nan = np.full_like(mean, np.nan, dtype=np.float64)
        return nan, nan.copy()
    return mean - half, mean + half


# ----------------------------------------------------------------------------- classification


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


def binary_nll(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log-likelihood of 0/1 labels under probabilities ``p``."""
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def fit_temperature(p: np.ndarray, y: np.ndarray) -> float:
    """Temperature T minimising the NLL of sigmoid(logit(p) / T) on labels ``y``."""
    from scipy.optimize import minimize_scalar

    z = _logit(p)
    y = np.asarray(y, dtype=np.float64)

    def nll(log_t: float) -> float:
        return binary_nll(y, _sigmoid(z / math.exp(log_t)))

    res = minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded", options={"xatol": 1e-4})
    return float(math.exp(res.x))


def fit_isotonic(p: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    """Knots of the isotonic (monotone) map from probability to observed frequency."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
    iso.fit(np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}


def fit_classification_task(p: np.ndarray, y: np.ndarray, method: str) -> dict[str, Any]:
    """Calibration of one task's probabilities from validation labels (NaN = missing)."""
    seen = ~np.isnan(y)
    p, y = p[seen], y[seen]
    if len(y) < 2 or y.min() == y.max():
        # one class only: any monotone map fits it perfectly, so keep the raw probability
        return {"method": "identity", "n": int(len(y)), "reason": "validation has one class"}
    if method == "temperature":
        return {"method": "temperature", "temperature": fit_temperature(p, y), "n": int(len(y))}
    if method == "isotonic":
        return {"method": "isotonic", **fit_isotonic(p, y), "n": int(len(y))}
    raise ValueError(f"calibration must be one of {CLASSIFICATION_METHODS}, got {method!r}")


def calibrate_probability(p: np.ndarray, task: dict[str, Any]) -> np.ndarray:
    """Apply one task's fitted calibration to probabilities ``p``."""
    method = task.get("method")
    if method == "temperature":
        return _sigmoid(_logit(p) / task["temperature"])
    if method == "isotonic":
        return np.interp(np.asarray(p, dtype=np.float64), task["x"], task["y"])
    return np.asarray(p, dtype=np.float64)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE over equal-width probability bins (labels 0/1, no missing values)."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if not len(y):
        return float("nan")
    idx = np.minimum((p * bins).astype(int), bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(err)


# ----------------------------------------------------------------------------- whole models


def fit_calibration(
    task_type: str,
    target_names: list[str],
    y: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray | None,
    coverage: float = 0.9,
    method: str = "temperature",
    uncertainty: str = "none",
) -> dict[str, Any]:
    """Fit every task on validation labels ``y`` and predictions (n, n_tasks); a JSON dict."""
    tasks = {}
    for t, name in enumerate(target_names):
        if task_type == "regression":
            tasks[name] = fit_regression_task(
                y[:, t], mean[:, t], None if std is None else std[:, t], coverage
            )
        else:
            tasks[name] = fit_classification_task(mean[:, t], y[:, t], method)
    cal: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "calibration",
        "task_type": task_type,
        "fitted_on": "valid",
        "n_valid": int(len(y)),
        "uncertainty": uncertainty,
        "tasks": tasks,
    }
    if task_type == "regression":
        cal["coverage"] = coverage
    else:
        cal["method"] = method
    return cal


def apply_calibration(
    cal: dict[str, Any], target_names: list[str], mean: np.ndarray, std: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Calibrated outputs by column suffix: ``lower``/``upper`` or ``prob_cal``, (n, n_tasks)."""
    n, k = mean.shape
    if cal["task_type"] == "regression":
        lower, upper = np.full((n, k), np.nan), np.full((n, k), np.nan)
        for t, name in enumerate(target_names):
            task = cal["tasks"].get(name, {"method": "none"})
            lower[:, t], upper[:, t] = regression_interval(
                mean[:, t], None if std is None else std[:, t], task
            )
        return {"lower": lower, "upper": upper}
    prob = np.full((n, k), np.nan)
    for t, name in enumerate(target_names):
        prob[:, t] = calibrate_probability(mean[:, t], cal["tasks"].get(name, {}))
    return {"prob_cal": prob}


def calibration_report(
    cal: dict[str, Any],
    target_names: list[str],
    y: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray | None,
) -> dict[str, Any]:
    """How well the calibration does on labelled data (e.g. the test split), per task and mean.

    Regression: empirical coverage and mean interval width. Classification: ECE and NLL of
    the raw and the calibrated probabilities.
    """
    out: dict[str, Any] = {"n": int(len(y)), "tasks": {}}
    cols = apply_calibration(cal, target_names, mean, std)
    summary: dict[str, list[float]] = {}
    for t, name in enumerate(target_names):
        seen = ~np.isnan(y[:, t])
        if not seen.any():
            continue
        yt = y[seen, t]
        if cal["task_type"] == "regression":
            lo, hi = cols["lower"][seen, t], cols["upper"][seen, t]
            if np.isnan(lo).all():
                continue
            r = {
                "coverage": float(np.mean((yt >= lo) & (yt <= hi))),
                "mean_width": float(np.mean(hi - lo)),
                "n": int(seen.sum()),
            }
        else:
            raw, calp = mean[seen, t], cols["prob_cal"][seen, t]
            r = {
                "ece_raw": expected_calibration_error(yt, raw),
                "ece_calibrated": expected_calibration_error(yt, calp),
                "nll_raw": binary_nll(yt, raw),
                "nll_calibrated": binary_nll(yt, calp),
                "n": int(seen.sum()),
            }
        out["tasks"][name] = r
        for key, v in r.items():
            if key != "n":
                summary.setdefault(key, []).append(v)
    out["mean"] = {k: float(np.mean(v)) for k, v in summary.items()}
    if cal["task_type"] == "regression":
        out["target_coverage"] = cal["coverage"]
    return out


def save_calibration(model_dir: str | Path, cal: dict[str, Any]) -> None:
    """Write ``calibration.json`` atomically."""
    write_json(Path(model_dir) / CALIBRATION_FILE, cal)


def load_calibration(model_dir: str | Path) -> dict[str, Any] | None:
    """``calibration.json`` of a model dir, or None if it has none."""
    path = Path(model_dir) / CALIBRATION_FILE
    if not path.exists():
        return None
    cal = read_json(path, "calibration")
    if cal.get("kind") != "calibration" or "tasks" not in cal:
        raise ModelFileError(f"{path} is not a fewmol calibration file")
    return cal
