"""`fewmol pretrain` end to end: resume equals an unbroken run; finetune --init starts from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from fewmol.cli import app
from fewmol.io.checkpoint import load_tensors

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:.*treespec.*")]

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.csv"
runner = CliRunner()


@pytest.fixture
def pretrain(run_pretrain):
    """`fewmol pretrain` on tiny.csv that must succeed; returns its output."""

    def run(*args: str | Path) -> str:
        result = run_pretrain("--data", TINY, *args)
        assert result.exit_code == 0, result.output
        return result.output

    return run


def test_resumed_run_matches_an_unbroken_one(tmp_path, pretrain, run_pretrain):
    full, part = tmp_path / "full", tmp_path / "part"
    # graphmvp-g: shuffling, conformer choice, atom masks, AttrMask masks and VRR noise all
    # have to continue exactly where the stopped run left them
    pretrain("--method", "graphmvp-g", "--epochs", "4", "--out", full)
    pretrain("--method", "graphmvp-g", "--epochs", "2", "--out", part)  # "killed" after 2
    assert json.loads((part / "config.json").read_text())["epochs_done"] == 2
    pretrain("--method", "graphmvp-g", "--epochs", "4", "--resume", "--out", part)
    a, b = pd.read_csv(full / "pretrain_log.csv"), pd.read_csv(part / "pretrain_log.csv")
    assert a["epoch"].tolist() == b["epoch"].tolist() == [1, 2, 3, 4]
    losses = [c for c in a.columns if c not in ("time_s", "mol_per_s")]
    assert {"loss", "contrastive", "generative", "attrmask"} <= set(losses)
    np.testing.assert_allclose(a[losses].to_numpy(), b[losses].to_numpy(), rtol=0, atol=1e-6)
    wa, wb = load_tensors(full / "encoder.safetensors"), load_tensors(part / "encoder.safetensors")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    cfg = json.loads((part / "config.json").read_text())
    assert cfg["complete"] is True and cfg["epochs_done"] == 4

    # resuming with other settings is refused
    result = run_pretrain(
        "--data", TINY, "--method", "graphmvp-g", "--epochs", "5", "--resume", "--alpha2", "0.5",
        "--out", part,
    )  # fmt: skip
    assert result.exit_code == 2 and "alpha2" in result.output


def test_finetune_starts_from_the_pretrained_encoder(tmp_path, tiny_csv, pretrain):
    pre, ft = tmp_path / "pre", tmp_path / "ft"
    pretrain("--method", "graphmvp", "--epochs", "1", "--out", pre)
    # lr 0: the fine-tuned weights stay the initial ones, so they must equal the encoder's
    args = ["finetune", str(tiny_csv), "--init", str(pre), "--epochs", "1", "--lr", "0"]
    args += ["--num-layers", "2", "--hidden", "32", "--accelerator", "cpu", "-q"]
    result = runner.invoke(app, [*args, "--out", str(ft)])
    assert result.exit_code == 0, result.output
    enc = load_tensors(pre / "encoder.safetensors")
    model = load_tensors(ft / "model.safetensors")
    params = [k for k in enc if "running_" not in k and "num_batches" not in k]
    assert params and all(torch.equal(model[f"encoder.{k}"], enc[k]) for k in params)
    cfg = json.loads((ft / "config.json").read_text())
    assert cfg["init_from"] == str(pre) and cfg["encoder"]["dropout"] == 0.5


@pytest.mark.parametrize("method", ["joao", "graphlog"])
def test_per_epoch_method_state_survives_a_resume(tmp_path, method, pretrain):
    # JOAO's augmentation distribution and GraphLoG's prototypes change at epoch ends; the
    # checkpoint written after an epoch must already hold the updated state
    full, part = tmp_path / "full", tmp_path / "part"
    pretrain("--method", method, "--epochs", "3", "--out", full)
    pretrain("--method", method, "--epochs", "1", "--out", part)
    pretrain("--method", method, "--epochs", "3", "--resume", "--out", part)
    a, b = pd.read_csv(full / "pretrain_log.csv"), pd.read_csv(part / "pretrain_log.csv")
    values = [c for c in a.columns if c not in ("time_s", "mol_per_s")]
    np.testing.assert_allclose(a[values].to_numpy(), b[values].to_numpy(), rtol=0, atol=1e-6)
    ca = load_tensors(full / "checkpoints" / "last.safetensors")
    cb = load_tensors(part / "checkpoints" / "last.safetensors")
    state = [k for k in ca if k.startswith("model.method.")]
    assert state and all(torch.allclose(ca[k].float(), cb[k].float(), atol=1e-6) for k in state)
    if method == "joao":  # the distribution moved away from uniform
        p = ca["model.method.aug_prob"]
        assert not torch.allclose(p, torch.full_like(p, 1 / 25))
        assert a[f"{method}_aug_entropy"].iloc[-1] < np.log(25) - 1e-3
    else:  # epochs 2-3 trained the prototype term
        assert a[f"{method}_loss_proto"].isna().tolist() == [True, False, False]


class _Stop(Exception):
    """Stands in for a kill right after a mid-epoch checkpoint."""


def test_a_run_stopped_mid_epoch_resumes_to_the_unbroken_result(
    tmp_path, pretrain, run_pretrain, monkeypatch
):
    import fewmol.pretrain.run as run_mod

    full, part = tmp_path / "full", tmp_path / "part"
    args = ("--method", "graphmvp-g", "--epochs", "3")
    pretrain(*args, "--out", full)
    # 24 molecules in batches of 8: stop after the first batch of epoch 2, whose checkpoint
    # (written after every batch at this interval) holds 8 of the epoch's 24 molecules
    seen: list[tuple[int, int]] = []
    original = run_mod._Recorder.on_train_batch_end

    def stop_after(self, trainer, pl_module, outputs, batch, idx):
        original(self, trainer, pl_module, outputs, batch, idx)
        seen.append((self.run.epochs_done, idx))
        if (self.run.epochs_done, idx) == (1, 0):
            raise _Stop

    monkeypatch.setattr(run_mod._Recorder, "on_train_batch_end", stop_after)
    result = run_pretrain("--data", TINY, *args, "--checkpoint-every", "1e-9", "--out", part)
    assert isinstance(result.exception, _Stop), result.output
    state = json.loads((part / "checkpoints" / "last.json").read_text())
    assert state["epochs_done"] == 1 and state["progress"]["items"] == 8
    assert state["progress"]["molecules"] == 8 and "loss" in state["progress"]["sums"]
    assert len(pd.read_csv(part / "pretrain_log.csv")) == 1  # the log keeps finished epochs
    monkeypatch.setattr(run_mod._Recorder, "on_train_batch_end", original)

    pretrain(*args, "--resume", "--out", part)
    a, b = pd.read_csv(full / "pretrain_log.csv"), pd.read_csv(part / "pretrain_log.csv")
    assert a["epoch"].tolist() == b["epoch"].tolist() == [1, 2, 3]
    assert a["molecules"].tolist() == b["molecules"].tolist() == [24, 24, 24]
    losses = [c for c in a.columns if c not in ("time_s", "mol_per_s")]
    np.testing.assert_allclose(a[losses].to_numpy(), b[losses].to_numpy(), rtol=0, atol=1e-6)
    wa, wb = load_tensors(full / "encoder.safetensors"), load_tensors(part / "encoder.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    state = json.loads((part / "checkpoints" / "last.json").read_text())
    assert state["epochs_done"] == 3 and "progress" not in state


def test_joao_checkpoints_at_epoch_ends_only(tmp_path, pretrain):
    # its epoch-end update needs every batch it kept this epoch, which no checkpoint holds
    out = tmp_path / "joao"
    pretrain("--method", "joao", "--epochs", "1", "--checkpoint-every", "1e-9", "--out", out)
    state = json.loads((out / "checkpoints" / "last.json").read_text())
    assert state["epochs_done"] == 1 and "progress" not in state


def test_resuming_a_finished_run_leaves_its_record_alone(tmp_path, pretrain):
    # a queue resumes finished runs again and again: config.json keeps the commit and wall
    # time of the process that trained, and a shorter plan still marks the run complete
    out = tmp_path / "pre"
    pretrain("--method", "attrmask", "--epochs", "2", "--out", out)
    before = (out / "config.json").read_text()
    cfg = json.loads(before)
    assert cfg["git_commits"] == ([cfg["git_commit"]] if cfg["git_commit"] else [])
    pretrain("--method", "attrmask", "--epochs", "2", "--resume", "--out", out)
    assert (out / "config.json").read_text() == before
    pretrain("--method", "attrmask", "--epochs", "1", "--resume", "--out", out)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["epochs"] == 1 and cfg["epochs_done"] == 2 and cfg["complete"] is True
