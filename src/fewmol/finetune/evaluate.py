"""External evaluation: score a model dir on labelled molecules it was not trained on.

A chemist's real test is a later batch of measurements (a temporal or external set), not the
scaffold split the model was selected on. :func:`evaluate_model` predicts a labelled table
with the model (as ``fewmol predict`` does) and scores it: the model's metric over tasks and
per task, the calibration measured on these labels, the metrics inside vs outside the
applicability domain, how many molecules share an ECFP4 fingerprint with a training
molecule (likely seen in training), and the model's own test score beside it for reference.
Works on fine-tuned dirs, ensembles and multi-task dirs (per-task ROC-AUC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fewmol.chem.mol import NO_HYGIENE
from fewmol.data.tables import Table, long_to_wide, read_table, table_columns
from fewmol.errors import InvalidInputError, ModelFileError
from fewmol.finetune.applicability import domain_report
from fewmol.finetune.calibration import calibration_report
from fewmol.finetune.metrics import evaluate, per_task_classification, regression_metrics
from fewmol.io.checkpoint import read_json


@dataclass
class Evaluation:
    """A report (JSON-ready) and the per-row predictions with the labels they were scored on."""

    report: dict[str, Any]
    predictions: pd.DataFrame


def per_task(task_type: str, names: list[str], y: np.ndarray, p: np.ndarray) -> dict[str, dict]:
    """Each task's metrics and label count (classification: NaN without both classes)."""
    out: dict[str, dict] = {}
    if task_type == "classification":
        per = per_task_classification(y, p)
        for t, name in enumerate(names):
            out[name] = {"roc_auc": per["roc_auc"][t], "prc_auc": per["prc_auc"][t]}
    else:
        for t, name in enumerate(names):
            m = regression_metrics(y[:, [t]], p[:, [t]])
            out[name] = {k: m[k] for k in ("rmse", "mae", "r2")}
    for t, name in enumerate(names):
        seen = ~np.isnan(y[:, t])
        out[name]["n"] = int(seen.sum())
        if task_type == "classification":
            out[name]["n_positive"] = int((y[seen, t] == 1).sum())
    return out


def _own_test_score(model_dir: Path) -> dict[str, float] | None:
    """The model's test metrics at its best-validation epoch (metrics.json; CV: fold mean)."""
    path = model_dir / "metrics.json"
    cv = model_dir / "cv_summary.json"
    if not path.is_file() and cv.is_file():
        try:
            folds = read_json(cv, "cross-validation summary").get("test_at_best_valid", {})
        except ModelFileError:
            return None
        return {k: v["mean"] for k, v in folds.items() if isinstance(v, dict) and "mean" in v}
    if not path.is_file():
        return None
    try:
        m = read_json(path, "metrics")
    except ModelFileError:
        return None
    test = m.get("test_at_best_valid") or (m.get("predictor") or {}).get("test")
    return {k: v for k, v in test.items() if isinstance(v, int | float)} if test else None


def _shown(names: list[str]) -> str:
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")


def _task_pair(entry: str, task_names: list[str]) -> tuple[str, str] | None:
    """``TASK=COLUMN`` split at the '=' after a task name (task names may hold '=' too)."""
    for i, ch in enumerate(entry):
        if ch == "=" and entry[:i] in task_names:
            return entry[:i], entry[i + 1 :]
    return None


def label_columns(
    source: str | Path | pd.DataFrame, task_names: list[str], target_cols: list[str] | None
) -> dict[int, str]:
    """Which input column holds each scored task's labels: {task index: column}.

    Default: the columns named like the model's tasks (tasks without one are not scored).
    ``target_cols``: one column per task in the model's order, or ``TASK=COLUMN`` pairs.
    """
    pairs = [_task_pair(c, task_names) for c in target_cols or []]
    if target_cols and all(pairs):
        return {task_names.index(t): col for t, col in pairs}  # type: ignore[misc]
    if target_cols and any("=" in c for c in target_cols) and len(target_cols) != len(task_names):
        bad = [c for c, pair in zip(target_cols, pairs) if pair is None]
        raise InvalidInputError(
            f"--target-cols: {', '.join(bad)} is not TASK=COLUMN with a task of the model; "
            f"its tasks are: {_shown(task_names)}"
        )
    if target_cols:
        if len(target_cols) != len(task_names):
            raise InvalidInputError(
                f"--target-cols names {len(target_cols)} column(s) but the model has "
                f"{len(task_names)} task(s) ({_shown(task_names)}); give one column per task "
                "in that order, or TASK=COLUMN pairs for some of them"
            )
        return dict(enumerate(target_cols))
    have = set(table_columns(source))
    found = {t: name for t, name in enumerate(task_names) if name in have}
    if not found:
        raise InvalidInputError(
            f"no column of {'the input table' if isinstance(source, pd.DataFrame) else source} "
            f"is named like a task of the model ({_shown(task_names)}); name the label "
            "columns like the tasks, or map them with --target-cols TASK=COLUMN"
        )
    return found


def _labels(
    source: str | Path | pd.DataFrame,
    smiles_col: str | None,
    task_names: list[str],
    target_cols: list[str] | None,
    task_type: str,
    on_invalid: str,
    hygiene: Any,
) -> tuple[Table, np.ndarray]:
    """The labelled table and its labels as (kept rows, model tasks); NaN for unscored tasks."""
    cols = label_columns(source, task_names, target_cols)
    table = read_table(
        source,
        smiles_col,
        list(cols.values()),
        task_type=task_type,
        on_invalid=on_invalid,
        duplicates="keep",  # an external set's repeats are measurements too
        hygiene=hygiene,
    )
    y = np.full((len(table.rows), len(task_names)), np.nan)
    y[:, list(cols)] = table.targets
    return table, y


def evaluate_model(
    model_dir: str | Path,
    source: str | Path | pd.DataFrame,
    smiles_col: str | None = None,
    target_cols: list[str] | None = None,
    on_invalid: str = "skip",
    precision: str = "32-true",
    long_format: tuple[str, str] | None = None,
) -> Evaluation:
    """Predict the labelled molecules of ``source`` with ``model_dir`` and score them.

    ``long_format`` = (task column, label column) reads one measurement per row (each row is
    scored on its own task; repeats stay separate measurements).
    """
    from fewmol.dta.predict import is_dta_dir
    from fewmol.multitask.predict import is_multitask_dir

    model_dir = Path(model_dir)
    if long_format is not None:
        if is_dta_dir(model_dir):
            raise InvalidInputError(
                "--task-col/--label-col read long tables of molecules; a DTA table already has "
                "one measured pair per row"
            )
        if target_cols:
            raise InvalidInputError("--target-cols names wide columns; not with --task-col")
        source, smiles_col, _, _ = long_to_wide(source, *long_format, smiles_col)
    if is_dta_dir(model_dir):
        return _evaluate_dta(model_dir, source, smiles_col, target_cols, precision)
    if is_multitask_dir(model_dir):
        return _evaluate_multitask(
            model_dir, source, smiles_col, target_cols, on_invalid, precision
        )
    from fewmol.finetune.predict import Predictor

    pred = Predictor.load(model_dir, precision=precision)
    names, task_type = pred.target_names, pred.config["task_type"]
    table, y = _labels(source, smiles_col, names, target_cols, task_type, on_invalid, pred.hygiene)
    df, _ = pred.predict(table)
    rows = table.rows
    mean = np.stack([df[f"{n}_pred"].to_numpy(np.float64)[rows] for n in names], axis=1)
    std = None
    if f"{names[0]}_std" in df:
        std = np.stack([df[f"{n}_std"].to_numpy(np.float64)[rows] for n in names], axis=1)
    report = _base_report(model_dir, table, names, task_type, y, mean)
    if pred.calibration is not None:
        report["calibration"] = calibration_report(pred.calibration, names, y, mean, std)
    if "ad_max_tanimoto" in df:
        sim = df["ad_max_tanimoto"].to_numpy(np.float64)[rows]
        report["same_fingerprint_as_training"] = int((sim >= 1.0).sum())
        if "ad_in_domain" in df:
            flag = df["ad_in_domain"].to_numpy(dtype=bool, na_value=False)[rows]
            report["applicability"] = domain_report(task_type, y, mean, flag)
    return Evaluation(report, _with_labels(df, table, names, y))


def _evaluate_multitask(
    model_dir: Path,
    source: str | Path | pd.DataFrame,
    smiles_col: str | None,
    target_cols: list[str] | None,
    on_invalid: str,
    precision: str,
) -> Evaluation:
    """Multi-task dirs: probabilities from the model (SGNN-EBM: Gibbs marginals), ROC-AUC."""
    from fewmol.multitask.predict import load_predictor, predict_table

    names = load_predictor(model_dir).task_names
    table, y = _labels(
        source, smiles_col, names, target_cols, "classification", on_invalid, NO_HYGIENE
    )
    df = predict_table(model_dir, table, precision=precision)
    mean = np.stack([df[f"{n}_pred"].to_numpy(np.float64)[table.rows] for n in names], axis=1)
    report = _base_report(model_dir, table, names, "classification", y, mean)
    return Evaluation(report, _with_labels(df, table, names, y))


def _evaluate_dta(
    model_dir: Path,
    source: str | Path | pd.DataFrame,
    smiles_col: str | None,
    target_cols: list[str] | None,
    precision: str,
) -> Evaluation:
    """DTA dirs: affinity of each (SMILES, sequence) row against a measured affinity column."""
    from fewmol.dta.module import dta_metrics
    from fewmol.dta.predict import predict_pairs

    df, summary = predict_pairs(model_dir, source, smiles_col, precision=precision)
    units = summary["units"]
    if target_cols and len(target_cols) != 1:
        raise InvalidInputError("--target-cols: a DTA model has one target, give one column")
    candidates = target_cols or [units, "affinity", "label", "y"]
    col = next((c for c in candidates if c in df.columns), None)
    if col is None:
        raise InvalidInputError(
            f"no column of measured affinities ({', '.join(candidates)}); pass --target-cols"
        )
    y = pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64)
    pred = df[f"{units}_pred"].to_numpy(np.float64)
    ok = df["valid"].to_numpy(bool) & np.isfinite(y)
    if not ok.any():
        raise InvalidInputError(f"no row has both a valid pair and a numeric {col!r}")
    bad = [
        {"row": int(i), "reason": df["error"].iloc[i] or f"no numeric {col}"}
        for i in np.flatnonzero(~ok)
    ]
    own = _own_test_score(model_dir)
    report = {
        "model_dir": str(model_dir),
        "task_type": "dta",
        "units": units,
        "read": f"read {len(df)} rows: {int(ok.sum())} scored, {len(bad)} not",
        "notes": summary["notes"],
        "n_rows": len(df),
        "n_evaluated": int(ok.sum()),
        "n_labels": int(ok.sum()),
        "bad_rows": bad,
        "metrics": _finite(dta_metrics(y[ok], pred[ok])),
        "per_task": {},
        "tasks_without_labels": [],
        "model_test_at_best_valid": own,
    }
    out = df.copy()
    out[f"{units}_label"] = np.where(ok, y, np.nan)
    return Evaluation(report, out)


def _base_report(
    model_dir: Path,
    table: Table,
    names: list[str],
    task_type: str,
    y: np.ndarray,
    mean: np.ndarray,
) -> dict[str, Any]:
    """Counts, the metrics over tasks and per task, and the model's own test score."""
    bad = table.bad_rows
    return {
        "model_dir": str(model_dir),
        "task_type": task_type,
        "read": table.summary(None),
        "notes": list(table.notes),
        "n_rows": int(table.n_input),
        "n_evaluated": int(len(table.rows)),
        "n_labels": int((~np.isnan(y)).sum()),
        "bad_rows": [
            {"row": int(r), "reason": str(why)} for r, why in zip(bad["row"], bad["reason"])
        ],
        "metrics": _finite(evaluate(task_type, y, mean)),
        "per_task": {k: _finite(v) for k, v in per_task(task_type, names, y, mean).items()},
        "tasks_without_labels": [n for t, n in enumerate(names) if np.isnan(y[:, t]).all()],
        "model_test_at_best_valid": _own_test_score(model_dir),
    }


def _finite(d: dict[str, Any]) -> dict[str, Any]:
    """NaN -> None, so the report is strict JSON."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def _with_labels(df: pd.DataFrame, table: Table, names: list[str], y: np.ndarray) -> pd.DataFrame:
    """Predictions with a ``<task>_label`` column per task (the parsed label, NaN if none)."""
    out = df.copy()
    for t, name in enumerate(names):
        col = np.full(table.n_input, np.nan)
        col[table.rows] = y[:, t]
        out[f"{name}_label"] = col
    return out
