"""fewmol.finetune.baseline: the random-forest baseline on the GNN's split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fewmol.data.splits import make_split
from fewmol.data.tables import read_table
from fewmol.finetune.baseline import rf_baseline, rf_features
from fewmol.finetune.metrics import classification_metrics

DATA = Path(__file__).resolve().parents[2] / "data"


def test_rf_beats_chance_on_tiny_classification() -> None:
    table = read_table(DATA / "tiny.csv")
    split = make_split("random", table.smiles, seed=0)
    scores, preds = rf_baseline(table, split, seed=0, trees=100)
    assert preds.shape == table.targets.shape and ((preds >= 0) & (preds <= 1)).all()
    assert scores["method"] == "rf" and scores["n_estimators"] == 100
    assert scores["train"]["roc_auc"] > 0.95
    held = ~np.isin(np.arange(len(table)), split.train)
    # the tiny tasks (acid group, contains N) are readable from the fingerprint
    assert classification_metrics(table.targets[held], preds[held])["roc_auc"] > 0.8
    assert set(scores) >= {"valid", "test", "features", "wall_time_s"}


def test_rf_regression_learns_logp() -> None:
    table = read_table(DATA / "tiny_regression.csv")
    split = make_split("random", table.smiles, seed=0)
    scores, preds = rf_baseline(table, split, seed=0, trees=100)
    y = table.targets[:, 0]
    held = ~np.isin(np.arange(len(table)), split.train)
    mae_rf = np.abs(preds[held, 0] - y[held]).mean()
    mae_mean = np.abs(y[split.train].mean() - y[held]).mean()
    assert mae_rf < 0.8 * mae_mean, (mae_rf, mae_mean)
    assert scores["test"]["rmse"] == pytest.approx(
        float(np.sqrt(np.mean((preds[split.test, 0] - y[split.test]) ** 2))), rel=1e-5
    )


def test_rf_is_seeded_and_features_finite() -> None:
    table = read_table(DATA / "tiny.csv")
    split = make_split("random", table.smiles, seed=0)
    a = rf_baseline(table, split, seed=3, trees=20)[1]
    b = rf_baseline(table, split, seed=3, trees=20)[1]
    np.testing.assert_array_equal(a, b)
    x = rf_features(table.smiles[:40])
    assert x.shape[0] == 40 and x.dtype == np.float32 and np.isfinite(x).all()


def test_one_class_training_task_predicts_base_rate() -> None:
    table = read_table(DATA / "tiny.csv")
    split = make_split("random", table.smiles, seed=0)
    table.targets[split.train, 1] = 1.0  # task 2 has one class in training
    _, preds = rf_baseline(table, split, seed=0, trees=10)
    assert np.allclose(preds[:, 1], 1.0)
