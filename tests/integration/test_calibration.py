"""Calibrated uncertainty on held-out molecules: conformal coverage of a GIN on ESOL."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fewmol.data.load import load_dataset
from fewmol.data.splits import make_split
from fewmol.data.tables import read_smiles
from fewmol.finetune.predict import predict_table
from fewmol.finetune.run import FinetuneConfig, finetune

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:.*treespec.*"),
    pytest.mark.filterwarnings("ignore:Total length of `DataLoader`.*"),
]
TARGET = 0.9


@pytest.fixture(scope="module")
def esol_run(tmp_path_factory):
    """A small GIN with MC-dropout on bundled ESOL; random 50/25/25 split (exchangeable)."""
    table, _ = load_dataset("esol", None, None, None)
    split = make_split("random", table.smiles, seed=0, fracs=(0.5, 0.25, 0.25))
    cfg = FinetuneConfig(
        num_layers=2,
        dim=32,
        epochs=6,
        batch_size=32,
        dropout=0.2,
        mc_dropout=5,
        coverage=TARGET,
        progress=False,
        accelerator="cpu",
    )
    out = tmp_path_factory.mktemp("esol") / "model"
    metrics = finetune(table, split, cfg, out)
    return out, table, split, metrics


def test_coverage_on_held_out_test_split_is_near_target(esol_run) -> None:
    out, table, split, metrics = esol_run
    name = table.target_names[0]
    pred = pd.read_csv(out / "predictions.csv")
    test = pred[pred["split"] == "test"]
    assert len(test) == len(split.test) > 250
    inside = (test[name] >= test[f"{name}_lower"]) & (test[name] <= test[f"{name}_upper"])
    coverage = float(inside.mean())
    # ~280 calibration and ~280 test molecules: the sd of the coverage is ~0.025
    assert abs(coverage - TARGET) <= 0.06, coverage
    assert metrics["calibration"]["test"]["coverage"] == pytest.approx(coverage)
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["tasks"][name]["method"] == "normalized" and cal["tasks"][name]["guaranteed"]
    # intervals are informative: narrower than the spread of the labels
    width = (test[f"{name}_upper"] - test[f"{name}_lower"]).mean()
    assert width < 2 * 1.645 * test[name].std()


def test_predict_on_new_rows_keeps_the_coverage(esol_run) -> None:
    """The same test molecules through `predict` (another row order, so new MC masks)."""
    out, table, split, _ = esol_run
    name = table.target_names[0]
    idx = split.test[::-1]
    frame = pd.DataFrame({"smiles": np.asarray(table.input_smiles, dtype=object)[idx]})
    df = predict_table(out, read_smiles(frame))
    y = table.targets[idx, 0]
    coverage = float(np.mean((y >= df[f"{name}_lower"]) & (y <= df[f"{name}_upper"])))
    assert abs(coverage - TARGET) <= 0.06, coverage
    assert df["ad_in_domain"].mean() > 0.7  # a random split: test looks like validation
