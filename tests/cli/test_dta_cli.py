"""`fewmol dta` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fewmol.cli import app

pytestmark = [pytest.mark.cli, pytest.mark.filterwarnings("ignore:.*treespec.*")]

TINY = ["--num-layers", "2", "--hidden", "32", "--protein-emb-dim", "8"]
TINY += ["--protein-filters", "8,8,8", "--protein-kernel", "4", "--mlp-hidden", "32,16"]
TINY += ["--max-len", "200", "--batch-size", "64", "--max-eval-pairs", "200"]
TINY += ["--accelerator", "cpu", "-q"]
runner = CliRunner()


def _user_error(result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert fragment in " ".join(result.output.split()), result.output


def test_davis_one_epoch_writes_metrics(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["dta", "davis", "--epochs", "1", "--max-pairs", "300", "--data-dir", str(shared_data)]
    result = runner.invoke(app, [*args, "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"mse", "ci"} <= set(metrics["test_at_best_valid"])
    assert metrics["max_pairs"] == 300 and metrics["split_sizes"]["train"] == 300
    assert metrics["throughput"]["train_pairs_per_s"] > 0
    assert "davis: test MSE" in result.stdout and "CI" in result.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["training"]["max_pairs"] == 300 and config["pairs"]["valid_fold"] == 0
    # an existing run is neither overwritten nor silently resumed
    again = runner.invoke(app, [*args, "--out", str(out), *TINY])
    _user_error(again, "--resume")
    resumed = runner.invoke(app, [*args, "--out", str(out), *TINY, "--resume", "--epochs", "2"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((out / "metrics.json").read_text())["epochs_done"] == 2


def test_unknown_dataset_and_bad_flags_exit_2(shared_data: Path, tmp_path: Path) -> None:
    out = ["--out", str(tmp_path / "x"), "--data-dir", str(shared_data)]
    _user_error(runner.invoke(app, ["dta", "bindingdb", *out]), "unknown DTA dataset")
    _user_error(runner.invoke(app, ["dta", "davis", *out, "--mlp-hidden", "a,b"]), "--mlp-hidden")
    _user_error(runner.invoke(app, ["dta", "davis", *out, "--ligands", "smiles"]), "--ligands")
    _user_error(
        runner.invoke(app, ["dta", "kiba", *out, "--init", str(tmp_path / "nope")]), "--init"
    )
