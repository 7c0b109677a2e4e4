"""STL in parts (one per worker) merged into one model dir equals one STL run over all tasks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem
from safetensors.torch import load_file

from fewmol.errors import InvalidInputError
from fewmol.multitask.inputs import load_input, resolve_split
from fewmol.multitask.run import (
    PART_FILE,
    PART_PREDICTIONS,
    STL_DIR,
    MultitaskConfig,
    featurize_input,
    merge_stl_parts,
    train_multitask,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*treespec.*")

TINY = Path(__file__).resolve().parents[2] / "data" / "tiny.csv"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """tiny.csv with five binary tasks (~25 % missing), its split, features and a tiny config."""
    tmp = tmp_path_factory.mktemp("stl_parts")
    src = pd.read_csv(TINY, dtype=str, keep_default_na=False)["Canonical SMILES"]
    mols = [(s, Chem.MolFromSmiles(s)) for s in src if s and Chem.MolFromSmiles(s)]
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"smiles": [s for s, _ in mols]})
    for k, elem in enumerate(["N", "O", "S", "Cl", "C"]):
        col = np.array(
            [int(sum(a.GetSymbol() == elem for a in m.GetAtoms()) > k % 2) for _, m in mols]
        )
        df[f"t{k}"] = np.where(rng.random(len(col)) < 0.25, "", col.astype(str))
    path = tmp / "assays.csv"
    df.to_csv(path, index=False)
    inp = load_input(str(path))
    split = resolve_split("random", inp, 0)
    cfg = MultitaskConfig(
        method="stl", epochs=2, num_layers=2, dim=16, batch_size=16, dropout=0.0,
        accelerator="cpu", progress=False, seed=3,
    )  # fmt: skip
    return tmp, inp, split, cfg, featurize_input(inp, cfg.featurizer)


def test_parts_merged_equal_one_run(setup) -> None:
    tmp, inp, split, cfg, graphs = setup
    whole = train_multitask(inp, split, None, cfg, tmp / "whole", graphs=graphs)
    parts = [tmp / f"part{i}" for i in range(2)]
    for i, d in enumerate(parts):
        rec = train_multitask(inp, split, None, cfg, d, graphs=graphs, part=(i, 2))
        trained = sorted(int(t) for t in rec["best"])
        assert trained == [t for t in range(5) if t % 2 == i]  # its own tasks only
        assert (d / PART_FILE).is_file() and not (d / "metrics.json").exists()
        assert (d / PART_PREDICTIONS).is_file()  # its tasks' predictions, made side by side
    merged = merge_stl_parts(inp, split, cfg, tmp / "merged", parts, graphs=graphs)

    for key in ("test_at_best_valid", "test_at_last_epoch", "best_valid", "best_epoch_per_task"):
        assert merged[key] == pytest.approx(whole[key]), key
    for t in range(5):  # the same models, bit for bit
        name = f"task_{t:04d}.safetensors"
        got, want = (load_file(tmp / d / STL_DIR / name) for d in ("merged", "whole"))
        assert got.keys() == want.keys()
        assert all(torch.equal(got[k], want[k]) for k in want), name
    cols = ["task", "epoch", "train_loss", "valid_roc_auc", "test_roc_auc"]
    log_m = pd.read_csv(tmp / "merged" / "train_log.csv")[cols]
    log_w = pd.read_csv(tmp / "whole" / "train_log.csv")[cols]
    pd.testing.assert_frame_equal(log_m, log_w)
    pred_m = pd.read_csv(tmp / "merged" / "predictions.csv")
    pred_w = pd.read_csv(tmp / "whole" / "predictions.csv")
    pd.testing.assert_frame_equal(pred_m, pred_w)


def test_a_part_resumes_past_its_finished_tasks(setup) -> None:
    tmp, inp, split, cfg, graphs = setup
    d = tmp / "again"
    first = train_multitask(inp, split, None, cfg, d, graphs=graphs, part=(1, 2))
    again = train_multitask(inp, split, None, cfg, d, resume=True, graphs=graphs, part=(1, 2))
    assert again["log_rows"] == first["log_rows"]  # nothing re-trained


def test_merge_refuses_an_incomplete_set_of_parts(setup) -> None:
    tmp, inp, split, cfg, graphs = setup
    d = tmp / "lone"
    train_multitask(inp, split, None, cfg, d, graphs=graphs, part=(0, 3))
    with pytest.raises(InvalidInputError, match="not the 1 parts"):
        merge_stl_parts(inp, split, cfg, tmp / "lone-merged", [d], graphs=graphs)
    with pytest.raises(InvalidInputError, match="for --method stl"):
        train_multitask(
            inp, split, None, MultitaskConfig(method="mtl"), tmp / "x", graphs=graphs, part=(0, 2)
        )
