"""Multi-process training through Lightning's DDP flags (CPU, 2 processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

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
