"""Fine-tuning end to end through the library API on the tiny fixtures (a few seconds each)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from fewmol.data.splits import make_split
from fewmol.data.tables import Table, read_table
from fewmol.errors import InvalidInputError
from fewmol.finetune.module import FinetuneModule, masked_loss
from fewmol.finetune.run import FinetuneConfig, featurize_table, finetune, predict_array
from fewmol.io.checkpoint import json_safe, load_tensors
from fewmol.io.modeldir import load_model, load_pretrained_encoder

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:.*treespec.*"),
    pytest.mark.filterwarnings("ignore:Total length of `DataLoader`.*"),
]

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.csv"
TINY_REG = Path(__file__).resolve().parents[1] / "data" / "tiny_regression.csv"
SMALL = {"num_layers": 2, "dim": 32, "batch_size": 16, "progress": False, "accelerator": "cpu"}


def _cfg(**kw) -> FinetuneConfig:
    return FinetuneConfig(**{**SMALL, **kw})


@pytest.fixture(scope="module")
def cls_table() -> Table:
    return read_table(TINY)


@pytest.fixture(scope="module")
def cls_run(tmp_path_factory, cls_table) -> tuple[Path, dict]:
    """30 epochs, no dropout, random split: a model that fits the tiny classification set."""
    out = tmp_path_factory.mktemp("cls") / "model"
    split = make_split("random", cls_table.smiles, seed=0)
    metrics = finetune(cls_table, split, _cfg(epochs=30, dropout=0.0, lr=3e-3), out)
    return out, metrics


def _auc(df: pd.DataFrame, names: list[str]) -> list[float]:
    """Per-task ROC-AUC of predictions.csv rows (tasks without both classes skipped)."""
    out = []
    for n in names:
        keep = df[n].notna()
        y, p = df.loc[keep, n], df.loc[keep, f"{n}_pred"]
        if y.nunique() == 2:
            out.append(float(roc_auc_score(y, p)))
    return out


# ---------------------------------------------------------------------- classification


def test_train_log_has_every_epoch_and_loss_drops(cls_run) -> None:
    out, _ = cls_run
    log = pd.read_csv(out / "train_log.csv")
    assert log["epoch"].tolist() == list(range(1, 31))
    assert np.isfinite(log["train_loss"]).all()
    first, last3 = log["train_loss"].iloc[0], log["train_loss"].iloc[-3:].mean()
    assert last3 < 0.7 * first, (first, last3)


def test_small_gin_beats_chance(cls_run, cls_table) -> None:
    out, _ = cls_run
    pred = pd.read_csv(out / "predictions.csv")
    assert len(pred) == len(cls_table) == 70
    assert set(pred["split"]) == {"train", "valid", "test"}
    names = cls_table.target_names
    train = _auc(pred[pred["split"] == "train"], names)
    assert len(train) == 2 and min(train) > 0.9, train
    held_out = _auc(pred[pred["split"] != "train"], names)
    assert held_out and np.mean(held_out) > 0.5, held_out
    probs = pred[[f"{n}_pred" for n in names]].to_numpy()
    assert ((probs >= 0) & (probs <= 1)).all()


def test_metrics_json_best_epoch_is_argmax_of_valid(cls_run) -> None:
    out, returned = cls_run
    metrics = json.loads((out / "metrics.json").read_text())
    # what finetune() returned is on disk (a score undefined on a one-class part, NaN, as null)
    assert metrics == json.loads(json.dumps(json_safe(returned)))
    log = pd.read_csv(out / "train_log.csv")
    best = int(log["epoch"][log["valid_roc_auc"].idxmax()])  # first maximum
    assert metrics["best_epoch"] == best
    assert metrics["epochs_done"] == metrics["epochs"] == 30
    row, last = log.set_index("epoch").loc[best], log.iloc[-1]
    assert metrics["best_valid"]["roc_auc"] == pytest.approx(row["valid_roc_auc"])
    assert metrics["test_at_best_valid"]["roc_auc"] == pytest.approx(row["test_roc_auc"])
    assert metrics["test_at_last_epoch"]["roc_auc"] == pytest.approx(last["test_roc_auc"])
    assert metrics["split_sizes"] == {"train": 56, "valid": 7, "test": 7}


def test_model_file_holds_the_best_epoch_weights(cls_run, cls_table, tmp_path) -> None:
    out, metrics = cls_run
    best = metrics["best_epoch"]
    assert best < 30, "needs a best epoch before the last one to tell them apart"
    saved = load_tensors(out / "model.safetensors")
    last = {
        k[len("model.") :]: v
        for k, v in load_tensors(out / "checkpoints" / "last.safetensors").items()
        if k.startswith("model.")
    }
    assert saved.keys() == last.keys()
    assert any(not torch.equal(saved[k], last[k]) for k in saved)

    # training is deterministic: a run stopped at the best epoch ends with the same weights
    split = make_split("random", cls_table.smiles, seed=0)
    finetune(cls_table, split, _cfg(epochs=best, dropout=0.0, lr=3e-3), tmp_path / "short")
    short = load_tensors(tmp_path / "short" / "model.safetensors")
    short_last = load_tensors(tmp_path / "short" / "checkpoints" / "last.safetensors")
    for k, v in saved.items():
        torch.testing.assert_close(short_last[f"model.{k}"], v, rtol=0, atol=1e-6)
        torch.testing.assert_close(short[k], v, rtol=0, atol=1e-6)


def test_reloaded_model_reproduces_predictions_csv(cls_run, cls_table) -> None:
    out, _ = cls_run
    model, cfg = load_model(out)
    assert cfg["target_names"] == cls_table.target_names
    module = FinetuneModule(model, cfg["task_type"])
    pred = predict_array(module, featurize_table(cls_table, cfg["featurizer"]))
    csv = pd.read_csv(out / "predictions.csv")
    assert csv["row"].tolist() == cls_table.rows.tolist()
    expected = csv[[f"{n}_pred" for n in cls_table.target_names]].to_numpy()
    np.testing.assert_allclose(pred, expected, atol=1e-5)


# ---------------------------------------------------------------------- regression


@pytest.fixture(scope="module")
def reg_run(tmp_path_factory) -> tuple[Path, Table]:
    """logP + 10 (far from zero, so unscaled outputs would show); no valid part: last epoch."""
    tmp = tmp_path_factory.mktemp("reg")
    df = pd.read_csv(TINY_REG, dtype=str, keep_default_na=False)
    col = "logP (Crippen)"
    num = pd.to_numeric(df[col], errors="coerce")
    df[col] = [f"{v + 10:.2f}" if np.isfinite(v) else s for v, s in zip(num, df[col])]
    path = tmp / "shifted.csv"
    df.to_csv(path, index=False)
    table = read_table(path)
    assert table.task_type == "regression"
    split = make_split("random", table.smiles, seed=0, fracs=(0.8, 0.0, 0.2))
    finetune(table, split, _cfg(epochs=30, dropout=0.0), tmp / "model")
    return tmp / "model", table


def test_regression_predictions_in_original_units(reg_run) -> None:
    out, table = reg_run
    cfg = json.loads((out / "config.json").read_text())
    pred = pd.read_csv(out / "predictions.csv")
    name = table.target_names[0]
    train = pred[pred["split"] == "train"]
    y, p = train[name].to_numpy(), train[f"{name}_pred"].to_numpy()
    assert y.mean() > 10
    assert cfg["target_scaling"]["mean"][0] == pytest.approx(y.mean(), rel=1e-5)
    assert abs(p.mean() - y.mean()) < 0.75 * y.std(), (p.mean(), y.mean())
    rmse = float(np.sqrt(np.mean((p - y) ** 2)))
    baseline = float(np.sqrt(np.mean((y - y.mean()) ** 2)))
    assert rmse < 0.8 * baseline, (rmse, baseline)
    test = pred[pred["split"] == "test"]
    assert len(test) > 0 and abs(test[f"{name}_pred"].mean() - y.mean()) < 2 * y.std()


def test_regression_without_valid_split_keeps_last_epoch(reg_run) -> None:
    out, _ = reg_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_epoch"] == 30 and metrics["select_metric"] == "rmse"
    assert set(metrics["test_at_best_valid"]) >= {"rmse", "mae", "r2"}
    assert metrics["test_at_best_valid"] == metrics["test_at_last_epoch"]


# ---------------------------------------------------------------------- masked loss


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_masked_loss_ignores_missing_labels(task: str) -> None:
    g = torch.Generator().manual_seed(0)
    out = torch.randn(6, 3, generator=g, requires_grad=True)
    y = torch.randint(0, 2, (6, 3), generator=g).float()
    missing = torch.zeros_like(y, dtype=torch.bool)
    missing[0, 1] = missing[2, 2] = missing[5, 0] = True
    y[missing] = float("nan")

    loss = masked_loss(out, y, task)
    loss.backward()
    assert torch.all(out.grad[missing] == 0)
    assert torch.all(out.grad[~missing] != 0)

    obs = ~missing
    if task == "classification":
        ref = torch.nn.functional.binary_cross_entropy_with_logits(out[obs], y[obs])
    else:
        ref = ((out[obs] - y[obs]) ** 2).mean()
    torch.testing.assert_close(loss, ref)

    changed = out.detach().clone()
    changed[missing] += torch.tensor([5.0, -3.0, 100.0])
    assert masked_loss(changed, y, task).item() == loss.item()
    changed[0, 0] += 1.0  # an observed cell does matter
    assert masked_loss(changed, y, task).item() != loss.item()


def test_masked_loss_all_missing_is_zero_with_grad() -> None:
    out = torch.randn(3, 2, requires_grad=True)
    loss = masked_loss(out, torch.full((3, 2), float("nan")), "classification")
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(out.grad == 0)


# ---------------------------------------------------------------------- --init


def _encoder_tensors(path: Path) -> dict[str, torch.Tensor]:
    return {
        k[len("encoder.") :]: v for k, v in load_tensors(path).items() if k.startswith("encoder.")
    }


def test_init_loads_the_encoder_weights(cls_run, cls_table, tmp_path) -> None:
    src, _ = cls_run
    src_enc = _encoder_tensors(src / "model.safetensors")
    encoder, _ = load_pretrained_encoder(src)
    loaded = encoder.state_dict()
    assert loaded.keys() == src_enc.keys()
    for k, v in src_enc.items():
        assert torch.equal(loaded[k], v), k

    # encoder_lr=0 freezes the loaded weights while the fresh head trains
    split = make_split("random", cls_table.smiles, seed=1)
    out = tmp_path / "from_init"
    cfg = _cfg(epochs=2, init=str(src), encoder_lr=0.0, seed=1)
    finetune(cls_table, split, cfg, out)
    config = json.loads((out / "config.json").read_text())
    assert config["init_from"] == str(src)
    assert config["training"]["init"] == str(src)
    params = {n for n, _ in encoder.named_parameters()}
    new_enc = _encoder_tensors(out / "model.safetensors")
    for k in params:
        assert torch.equal(new_enc[k], src_enc[k]), k
    new, old = load_tensors(out / "model.safetensors"), load_tensors(src / "model.safetensors")
    assert not torch.equal(new["head.linear.weight"], old["head.linear.weight"])  # head not loaded

    # the same run without --init starts from other weights
    finetune(cls_table, split, _cfg(epochs=2, encoder_lr=0.0, seed=1), tmp_path / "scratch")
    scratch = _encoder_tensors(tmp_path / "scratch" / "model.safetensors")
    assert any(not torch.equal(scratch[k], src_enc[k]) for k in params)
    cfg_scratch = json.loads((tmp_path / "scratch" / "config.json").read_text())
    assert cfg_scratch["init_from"] is None


def test_init_with_other_featurizer_is_refused(cls_run, cls_table, tmp_path) -> None:
    src, _ = cls_run
    split = make_split("random", cls_table.smiles, seed=0)
    cfg = _cfg(epochs=1, init=str(src), featurizer="ogb")
    with pytest.raises(InvalidInputError, match="featurizer") as exc:
        finetune(cls_table, split, cfg, tmp_path / "bad")
    assert "hu2019" in str(exc.value) and "ogb" in str(exc.value)
    assert not (tmp_path / "bad" / "model.safetensors").exists()


# one heavy atom each: every batch of 32 has 32 atoms, a batch of one has a single atom
ONE_ATOM = [
    "C", "N", "O", "F", "Cl", "Br", "I", "S", "P", "[Na+]", "[K+]", "[Li+]", "[Cl-]", "[Br-]",
    "[I-]", "[F-]", "[NH4+]", "[OH-]", "[Ca+2]", "[Mg+2]", "[Zn+2]", "[Fe+2]", "[Fe+3]",
    "[Cu+2]", "[Cu+]", "[Ag+]", "[Al+3]", "[Ba+2]", "[Sr+2]", "[Cs+]", "[Rb+]", "[Mn+2]",
    "[Co+2]", "[Ni+2]", "[Se]", "[B]", "[Xe]", "[Ar]", "[Kr]", "[Ne]",
]  # fmt: skip


def test_a_last_training_batch_of_one_single_atom_molecule_still_trains(tmp_path) -> None:
    """FreeSolv's methane as the odd one out (train % batch == 1) once broke batch norm."""
    frame = pd.DataFrame({"smiles": ONE_ATOM, "y": np.linspace(0.0, 1.0, len(ONE_ATOM))})
    table = read_table(frame, task_type="regression")
    split = make_split("custom", table.smiles, labels=["train"] * 33 + ["valid"] * 4 + ["test"] * 3)
    metrics = finetune(table, split, _cfg(batch_size=32, epochs=2), tmp_path / "m")
    assert metrics["epochs_done"] == 2
    log = pd.read_csv(tmp_path / "m" / "train_log.csv")
    assert len(log) == 2 and np.isfinite(log["train_loss"]).all()
