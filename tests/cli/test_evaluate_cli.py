"""`fewmol evaluate`: a model dir scored on labelled molecules, checked against `predict`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_helpers import cli_ok, cli_user_error
from fewmol.finetune.metrics import classification_metrics, regression_metrics

pytestmark = [pytest.mark.cli, pytest.mark.filterwarnings("ignore:.*treespec.*")]

DATA = Path(__file__).resolve().parents[1] / "data"
TINY = DATA / "tiny.csv"
TINY_REG = DATA / "tiny_regression.csv"
SMALL = ["--num-layers", "2", "--hidden", "32", "--batch-size", "16", "-q"]
SMALL += ["--accelerator", "cpu", "--split", "random", "--dropout", "0"]
TASKS = ["Acid (active=1)", "N-count > 0 [class]"]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("evaluate")


@pytest.fixture(scope="module")
def cls_model(tmp) -> Path:
    cli_ok(["finetune", TINY, "--out", tmp / "cls", "--epochs", "3", *SMALL])
    return tmp / "cls"


def _labels(path: Path, cols: list[str]) -> np.ndarray:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return np.stack([pd.to_numeric(df[c], errors="coerce").to_numpy(float) for c in cols], 1)


def test_scores_equal_metrics_of_predict_output(cls_model, tmp) -> None:
    report, rows = tmp / "r.json", tmp / "rows.csv"
    result = cli_ok(["evaluate", cls_model, TINY, "--out", report, "--predictions", rows])
    cli_ok(["predict", cls_model, TINY, "--out", tmp / "p.csv"])
    pred = pd.read_csv(tmp / "p.csv")
    valid = pred["valid"].to_numpy(bool)
    y = _labels(TINY, TASKS)[valid]
    p = pred.loc[valid, [f"{t}_pred" for t in TASKS]].to_numpy()
    labelled = ~np.isnan(y).all(1)
    expected = classification_metrics(y[labelled], p[labelled])
    r = json.loads(report.read_text())
    assert r["metrics"]["roc_auc"] == pytest.approx(expected["roc_auc"], abs=1e-9)
    assert r["metrics"]["prc_auc"] == pytest.approx(expected["prc_auc"], abs=1e-9)
    assert r["n_rows"] == 76 and r["n_evaluated"] == int(labelled.sum())
    assert r["n_labels"] == int((~np.isnan(y)).sum())
    assert [b["row"] for b in r["bad_rows"]] == [43, 47, 51, 55, 63]  # 4 bad SMILES, 1 unlabelled
    assert set(r["per_task"]) == set(TASKS) and r["tasks_without_labels"] == []
    own = json.loads((cls_model / "metrics.json").read_text())["test_at_best_valid"]["roc_auc"]
    assert r["model_test_at_best_valid"]["roc_auc"] == pytest.approx(own)
    # the training molecules are in this set: the report says so, and the domain split exists
    assert r["same_fingerprint_as_training"] > 40
    assert 0 < r["applicability"]["in_domain_fraction"] <= 1
    assert {"ece_raw", "ece_calibrated"} <= set(r["calibration"]["mean"])
    out = " ".join(result.stdout.split())
    assert f"roc_auc {expected['roc_auc']:.3f}" in out and "N-count > 0 [class]" in out
    table = pd.read_csv(rows)
    assert len(table) == 76
    np.testing.assert_array_equal(
        table.loc[valid, f"{TASKS[0]}_label"].to_numpy(), _labels(TINY, TASKS)[valid, 0]
    )


def test_columns_map_to_tasks_and_missing_tasks_are_not_scored(cls_model, tmp) -> None:
    df = pd.read_csv(TINY, dtype=str, keep_default_na=False)
    renamed = tmp / "renamed.csv"
    df.rename(columns={TASKS[0]: "acid"}).to_csv(renamed, index=False)
    r1, r2 = tmp / "r1.json", tmp / "r2.json"
    cli_ok(["evaluate", cls_model, renamed, "--out", r1])  # only the task named like a column
    cli_ok(["evaluate", cls_model, renamed, "--target-cols", f"{TASKS[0]}=acid", "--out", r2])
    full = tmp / "full.json"
    cli_ok(["evaluate", cls_model, TINY, "--out", full])
    by_task = json.loads(full.read_text())["per_task"]
    one, two = json.loads(r1.read_text()), json.loads(r2.read_text())
    assert one["tasks_without_labels"] == [TASKS[0]]
    assert one["metrics"]["roc_auc"] == pytest.approx(by_task[TASKS[1]]["roc_auc"])
    assert two["tasks_without_labels"] == [TASKS[1]]
    assert two["metrics"]["roc_auc"] == pytest.approx(by_task[TASKS[0]]["roc_auc"])
    assert two["per_task"][TASKS[1]]["n"] == 0


def test_bad_inputs_exit_2(cls_model, tmp) -> None:
    df = pd.read_csv(TINY, dtype=str, keep_default_na=False)
    no_labels = tmp / "no_labels.csv"
    df[["compound id", "Canonical SMILES"]].to_csv(no_labels, index=False)
    cli_user_error(["evaluate", cls_model, no_labels], "no column", "named like a task", TASKS[0])
    cli_user_error(["evaluate", cls_model, TINY, "--target-cols", "x"], "1 column(s)", "2 task(s)")
    cli_user_error(["evaluate", cls_model, TINY, "--target-cols", "acid=x"], "not TASK=COLUMN")
    strange = tmp / "strange.csv"
    bad = df.copy()
    bad.loc[0, TASKS[0]] = "maybe"
    bad.to_csv(strange, index=False)
    cli_user_error(["evaluate", cls_model, strange, "--on-invalid", "error"], "row 0")
    report = tmp / "strange.json"
    cli_ok(["evaluate", cls_model, strange, "--out", report])  # skip: listed, the rest scored
    assert 0 in [b["row"] for b in json.loads(report.read_text())["bad_rows"]]


def test_regression_model_reports_rmse_and_interval_coverage(tmp) -> None:
    model = tmp / "reg"
    cli_ok(["finetune", TINY_REG, "--out", model, "--epochs", "3", *SMALL])
    report = tmp / "reg.json"
    cli_ok(["evaluate", model, TINY_REG, "--out", report])
    cli_ok(["predict", model, TINY_REG, "--out", tmp / "reg_p.csv"])
    pred = pd.read_csv(tmp / "reg_p.csv")
    col = "logP (Crippen)"
    label = pd.to_numeric(pred[col], errors="coerce").to_numpy(float)  # 'n.d.' = no label
    ok = pred["valid"].to_numpy(bool) & ~np.isnan(label)
    expected = regression_metrics(label[ok, None], pred.loc[ok, [f"{col}_pred"]].to_numpy())
    r = json.loads(report.read_text())
    assert r["task_type"] == "regression"
    assert r["metrics"]["rmse"] == pytest.approx(expected["rmse"], rel=1e-6)
    assert 0 <= r["calibration"]["mean"]["coverage"] <= 1


def test_multitask_dir_is_scored_with_its_probabilities(tmp) -> None:
    df = pd.read_csv(TINY, dtype=str, keep_default_na=False)
    data = tmp / "mt.csv"
    df.rename(columns={"Canonical SMILES": "smiles"}).to_csv(data, index=False)
    model = tmp / "mt"
    mt = ["--num-layers", "2", "--hidden", "32", "--task-dim", "8", "--state-dim", "8"]
    mt += ["--sgnn-hidden", "16", "--batch-size", "16", "--accelerator", "cpu", "-q"]
    mt += ["--epochs", "2"]
    cols = ",".join(TASKS)
    cli_ok(["multitask", data, "--method", "mtl", "--target-cols", cols, "--out", model, *mt])
    report = tmp / "mt.json"
    cli_ok(["evaluate", model, data, "--out", report])
    cli_ok(["predict", model, data, "--out", tmp / "mt_p.csv"])
    pred = pd.read_csv(tmp / "mt_p.csv")
    valid = pred["valid"].to_numpy(bool)
    y = _labels(data, TASKS)[valid]
    p = pred.loc[valid, [f"{t}_pred" for t in TASKS]].to_numpy()
    keep = ~np.isnan(y).all(1)
    r = json.loads(report.read_text())
    expected = classification_metrics(y[keep], p[keep])["roc_auc"]
    assert r["metrics"]["roc_auc"] == pytest.approx(expected, abs=1e-9)
    assert "applicability" not in r and r["model_test_at_best_valid"] is not None


def test_long_format_labels_score_like_their_wide_twin(cls_model, tmp) -> None:
    wide = pd.read_csv(TINY, dtype=str, keep_default_na=False)
    smiles = "Canonical SMILES"
    long = wide.melt(id_vars=smiles, value_vars=TASKS, var_name="assay", value_name="y")
    long = long[long["y"] != ""].sample(frac=1.0, random_state=0)
    path = tmp / "long_labels.csv"
    long.to_csv(path, index=False)
    a, b = tmp / "wide.json", tmp / "long.json"
    cli_ok(["evaluate", cls_model, TINY, "--out", a])
    cli_ok(["evaluate", cls_model, path, "--task-col", "assay", "--label-col", "y", "--out", b])
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    # the same (molecule, task) labels, one per row instead of one row per molecule
    assert rb["n_labels"] == ra["n_labels"]
    for t in TASKS:
        assert rb["per_task"][t]["roc_auc"] == pytest.approx(ra["per_task"][t]["roc_auc"])
    cli_user_error(["evaluate", cls_model, path, "--label-col", "y"], "go together")
