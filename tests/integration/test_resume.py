"""A killed `fewmol finetune` resumes where it stopped and ends as an unbroken run would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import fewmol.io.checkpoint as ckpt_mod
from fewmol.cli import app
from fewmol.data.splits import make_split
from fewmol.data.tables import read_table
from fewmol.finetune.run import FinetuneConfig, finetune

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:.*treespec.*"),
]

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.csv"
EPOCHS = 16  # ~0.1 s each: the poll below kills it at >= 3 with time to spare
ARGS = [
    "--epochs",
    str(EPOCHS),
    "--num-layers",
    "2",
    "--hidden",
    "32",
    "--batch-size",
    "16",
    "--seeds",
    "0",
    "--accelerator",
    "cpu",
    "-q",
]
runner = CliRunner()


def _fewmol_exe() -> str:
    exe = Path(sys.executable).parent / "fewmol"
    if exe.exists():
        return str(exe)
    found = shutil.which("fewmol")
    if found is None:
        pytest.skip("the fewmol console script is not installed")
    return found


def _epochs_done(out: Path) -> int:
    try:
        return int(json.loads((out / "checkpoints" / "last.json").read_text())["epochs_done"])
    except (OSError, ValueError, KeyError):
        return 0


def _cli(*args: str) -> object:
    result = runner.invoke(app, ["finetune", str(TINY), *args])
    return result


def _log(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "train_log.csv").drop(columns="time_s")


def test_killed_run_resumes_to_the_same_result(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    stderr = open(tmp_path / "stderr.txt", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [_fewmol_exe(), "finetune", str(TINY), "--out", str(out), *ARGS],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while _epochs_done(out) < 3:
            assert proc.poll() is None, (
                f"finetune ended (rc {proc.returncode}) before it could be killed: "
                + (tmp_path / "stderr.txt").read_text()[-2000:]
            )
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stderr.close()
    assert proc.returncode == -signal.SIGKILL
    killed_at = _epochs_done(out)
    assert 3 <= killed_at < EPOCHS, killed_at
    assert not (out / "metrics.json").exists()

    result = _cli("--out", str(out), *ARGS, "--resume")
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_done"] == EPOCHS
    resumed = _log(out)
    assert resumed["epoch"].tolist() == list(range(1, EPOCHS + 1))

    fresh = tmp_path / "unbroken"
    result = _cli("--out", str(fresh), *ARGS)
    assert result.exit_code == 0, result.output
    unbroken = _log(fresh)
    assert list(resumed.columns) == list(unbroken.columns)
    np.testing.assert_allclose(resumed["train_loss"], unbroken["train_loss"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(resumed.to_numpy(float), unbroken.to_numpy(float), atol=1e-6)
    fresh_metrics = json.loads((fresh / "metrics.json").read_text())
    assert metrics["best_epoch"] == fresh_metrics["best_epoch"]
    assert metrics["test_at_best_valid"] == pytest.approx(fresh_metrics["test_at_best_valid"])
    a = pd.read_csv(out / "predictions.csv")
    b = pd.read_csv(fresh / "predictions.csv")
    np.testing.assert_allclose(a.filter(like="_pred"), b.filter(like="_pred"), atol=1e-5)


class _Crash(RuntimeError):
    pass


def test_stop_between_checkpoint_files_still_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = read_table(TINY)
    split = make_split("random", table.smiles, seed=0)
    cfg = FinetuneConfig(
        epochs=6, num_layers=2, dim=32, batch_size=16, progress=False, accelerator="cpu"
    )
    finetune(table, split, cfg, tmp_path / "unbroken")

    real_write_json = ckpt_mod.write_json

    def crash_before_third_json(path, obj):
        if Path(path).name == "last.json" and obj["epochs_done"] == 3:
            raise _Crash("stopped between last.safetensors and last.json")
        real_write_json(path, obj)

    monkeypatch.setattr(ckpt_mod, "write_json", crash_before_third_json)
    with pytest.raises(_Crash):
        finetune(table, split, cfg, tmp_path / "stopped")
    monkeypatch.setattr(ckpt_mod, "write_json", real_write_json)
    finetune(table, split, cfg, tmp_path / "stopped", resume=True)

    a, b = _log(tmp_path / "stopped"), _log(tmp_path / "unbroken")
    assert a["epoch"].tolist() == list(range(1, 7))
    np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=0, atol=1e-6)


def test_resume_with_other_targets_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    short = ["--epochs", "2", *ARGS[2:]]
    assert _cli("--out", str(out), *short).exit_code == 0
    before = (out / "config.json").read_text()
    result = _cli("--out", str(out), *short, "--resume", "--target-cols", "Acid (active=1)")
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "cannot resume" in text and "target_names" in text
    assert "Traceback" not in result.output
    assert (out / "config.json").read_text() == before


def test_non_empty_out_needs_resume_or_force(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    short = ["--epochs", "1", *ARGS[2:]]
    result = _cli("--out", str(out), *short)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "not empty" in text and "--resume" in text and "--force" in text
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me"

    result = _cli("--out", str(out), *short, "--force")
    assert result.exit_code == 0, result.output
    assert (out / "metrics.json").exists()
