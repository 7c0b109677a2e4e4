"""--precision bf16-mixed: every training command runs, learns and records it; bad values exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from fewmol.cli import app
from fewmol.data.splits import make_split
from fewmol.data.tables import read_table
from fewmol.finetune.run import FinetuneConfig, finetune
from fewmol.pretrain.data import PRETRAIN_METHODS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:.*treespec.*"),
    pytest.mark.filterwarnings("ignore:Total length of `DataLoader`.*"),
    pytest.mark.filterwarnings("ignore:.*precision.*"),
]

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.csv"
runner = CliRunner()


def test_bf16_finetune_learns_like_float32(tmp_path: Path) -> None:
    table = read_table(TINY)
    split = make_split("random", table.smiles, seed=0)
    small = dict(num_layers=2, dim=32, batch_size=16, progress=False, accelerator="cpu")
    aucs = {}
    for precision in ("32-true", "bf16-mixed"):
        out = tmp_path / precision
        cfg = FinetuneConfig(epochs=30, dropout=0.0, lr=3e-3, precision=precision, **small)
        finetune(table, split, cfg, out)
        log = pd.read_csv(out / "train_log.csv")
        assert np.isfinite(log["train_loss"]).all()
        assert log["train_loss"].iloc[-3:].mean() < 0.7 * log["train_loss"].iloc[0]
        pred = pd.read_csv(out / "predictions.csv")
        train = pred[pred["split"] == "train"]
        aucs[precision] = []
        for n in table.target_names:
            known = train[train[n].notna()]
            if known[n].nunique() == 2:
                aucs[precision].append(roc_auc_score(known[n], known[f"{n}_pred"]))
        config = json.loads((out / "config.json").read_text())
        assert config["training"]["precision"] == precision
    assert min(aucs["bf16-mixed"]) > 0.9, aucs
    assert np.allclose(aucs["bf16-mixed"], aucs["32-true"], atol=0.08), aucs


@pytest.mark.parametrize("method", PRETRAIN_METHODS)
def test_every_pretraining_method_trains_under_bf16(
    method: str, tmp_path: Path, run_pretrain
) -> None:
    out = tmp_path / method
    args = ["--data", TINY, "--method", method, "--epochs", "2", "--precision", "bf16-mixed"]
    result = run_pretrain(*args, "--out", out)
    assert result.exit_code == 0, result.output
    log = pd.read_csv(out / "pretrain_log.csv")
    assert len(log) == 2 and np.isfinite(log["loss"]).all()
    config = json.loads((out / "config.json").read_text())
    assert config["pretraining"]["precision"] == "bf16-mixed"


def test_graphmvp_loss_stays_float32_under_bf16(tmp_path: Path, run_pretrain) -> None:
    # a bf16 loss has 8 significant bits: the logged per-batch contrastive values would be
    # multiples of 2**-7 near 1-2; float32 losses are not
    out = tmp_path / "g"
    args = ["--data", TINY, "--method", "graphmvp", "--epochs", "1", "--batch-size", "24"]
    result = run_pretrain(*args, "--precision", "bf16-mixed", "--out", out)
    assert result.exit_code == 0, result.output
    value = float(pd.read_csv(out / "pretrain_log.csv")["contrastive"].iloc[0])
    assert value != float(torch.tensor(value).to(torch.bfloat16)), value


def test_multitask_and_dta_train_under_bf16(shared_data: Path, tmp_path: Path) -> None:
    src = pd.read_csv(TINY, dtype=str, keep_default_na=False)
    smiles = src["Canonical SMILES"]
    rng = np.random.default_rng(0)
    labels = {f"t{k}": rng.integers(0, 2, len(smiles)).astype(str) for k in range(3)}
    data = tmp_path / "mt.csv"
    pd.DataFrame({"smiles": smiles, **labels}).to_csv(data, index=False)
    small = ["--num-layers", "2", "--hidden", "32", "--batch-size", "16", "-q", "--epochs", "2"]
    small += ["--accelerator", "cpu", "--task-dim", "8", "--state-dim", "8"]
    small += ["--sgnn-hidden", "16", "--gibbs-sweeps", "4", "--gibbs-chains", "2"]
    out = tmp_path / "mt"
    result = runner.invoke(
        app, ["multitask", str(data), "--method", "sgnn-ebm", *small, "--precision",
              "bf16-mixed", "--on-invalid", "skip", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(pd.read_csv(out / "train_log.csv")["train_loss"]).all()
    assert json.loads((out / "config.json").read_text())["training"]["precision"] == "bf16-mixed"
    assert metrics["epochs_done"] == 2

    tiny_dta = ["--num-layers", "2", "--hidden", "32", "--protein-emb-dim", "8"]
    tiny_dta += ["--protein-filters", "8,8,8", "--protein-kernel", "4", "--mlp-hidden", "32,16"]
    tiny_dta += ["--max-len", "200", "--batch-size", "64", "--max-eval-pairs", "200"]
    tiny_dta += ["--accelerator", "cpu", "-q", "--max-pairs", "300", "--epochs", "1"]
    out = tmp_path / "dta"
    result = runner.invoke(
        app, ["dta", "davis", "--data-dir", str(shared_data), *tiny_dta, "--precision",
              "bf16-mixed", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    mse = json.loads((out / "metrics.json").read_text())["test_at_best_valid"]["mse"]
    assert np.isfinite(mse)


@pytest.mark.parametrize("command", ["finetune", "pretrain", "multitask", "dta"])
def test_unknown_precision_is_a_user_error(command: str, tmp_path: Path) -> None:
    data = "davis" if command == "dta" else str(TINY)
    args = [command] if command == "pretrain" else [command, data]
    if command == "pretrain":
        args += ["--data", data]
    result = runner.invoke(app, [*args, "--precision", "8-bit", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "--precision must be one of 32-true, bf16-mixed, 16-mixed" in " ".join(
        result.output.split()
    )
