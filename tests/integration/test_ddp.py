"""Multi-process training through Lightning's DDP flags (CPU, 2 processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import TINY_PRETRAIN

FEWMOL = Path(sys.executable).parent / "fewmol"


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_trains_and_scores_all_molecules(tmp_path, tiny_csv):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [
        str(FEWMOL),
        "finetune",
        str(tiny_csv),
        "--out",
        str(out),
        "--epochs",
        "3",
        "--accelerator",
        "cpu",
        "--devices",
        "2",
        "--strategy",
        "ddp",
        "-q",
        "--num-layers",
        "2",
        "--hidden",
        "32",
        "--split",
        "random",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    log = pd.read_csv(out / "train_log.csv")
    assert log["epoch"].tolist() == [1, 2, 3]
    assert (out / "metrics.json").exists() and (out / "model.safetensors").exists()
    preds = pd.read_csv(out / "predictions.csv")
    assert len(preds) == 70  # every kept molecule predicted once, by rank 0


@pytest.mark.slow
def test_pretraining_stopped_mid_epoch_resumes_under_ddp(tmp_path, run_pretrain, monkeypatch):
    import fewmol.pretrain.run as run_mod

    out = tmp_path / "pre"
    args = ["--method", "graphmvp-g", "--epochs", "3", "--checkpoint-every", "1e-9"]
    original = run_mod._Recorder.on_train_batch_end

    class Stop(Exception):
        pass

    def stop_after(self, trainer, pl_module, outputs, batch, idx):
        original(self, trainer, pl_module, outputs, batch, idx)
        if (self.run.epochs_done, idx) == (1, 0):
            raise Stop

    monkeypatch.setattr(run_mod._Recorder, "on_train_batch_end", stop_after)
    tiny = Path(__file__).resolve().parents[1] / "data" / "tiny.csv"
    result = run_pretrain("--data", tiny, *args, "--out", out)
    assert isinstance(result.exception, Stop), result.output
    assert json.loads((out / "checkpoints" / "last.json").read_text())["progress"]["items"] == 8
    # one process stopped, two resume: the rest of epoch 2 is dealt to both ranks, and the
    # mid-epoch checkpoints of the DDP run (ranks agree on when) do not deadlock
    cmd = [str(FEWMOL), "pretrain", *TINY_PRETRAIN, "--data", str(tiny), *args, "--resume"]
    cmd += ["--out", str(out), "--devices", "2", "--strategy", "ddp"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    log = pd.read_csv(out / "pretrain_log.csv")
    assert log["epoch"].tolist() == [1, 2, 3] and log["molecules"].tolist() == [24, 24, 24]
    state = json.loads((out / "checkpoints" / "last.json").read_text())
    assert state["epochs_done"] == 3 and "progress" not in state
