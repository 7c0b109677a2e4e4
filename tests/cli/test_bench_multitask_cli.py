"""`fewmol bench multitask` and `fewmol bench report multitask` through typer's CliRunner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import fewmol.bench.multitask as mt
from fewmol.cli import app

pytestmark = [pytest.mark.cli, pytest.mark.filterwarnings("ignore:.*treespec.*")]

runner = CliRunner()
TINY_MODEL = {"num_layers": 1, "dim": 16, "task_dim": 4, "state_dim": 4, "sgnn_hidden": 8}


def _bench(tmp_path, *args: str):
    out, work = str(tmp_path / "r"), str(tmp_path / "w")
    return runner.invoke(app, ["bench", "multitask", *args, "--out", out, "--work", work])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--methods", "mtl,sgnn-ebn"],
            "unknown multitask method(s) 'sgnn-ebn'; choose from: stl,",
        ),
        (["--methods", "sgnn-ebm@graphmvp-c"], "pass the encoder with --init"),
        (
            ["--datasets", "chembl-50"],
            "'chembl-50' not in the multitask protocol (datasets: chembl-10",
        ),
        (["--seeds", "a"], "--seeds must be comma-separated integers"),
        (["--epochs", "0"], "--epochs must be >= 1"),
    ],
)
def test_bad_arguments_exit_2_before_any_work(tmp_path, args, message) -> None:
    result = _bench(tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert message in " ".join(result.stderr.split()), result.stderr
    assert not (tmp_path / "r").exists() and not (tmp_path / "w").exists()


def test_bench_run_points_to_the_multitask_command(tmp_path) -> None:
    result = runner.invoke(app, ["bench", "run", "multitask", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "fewmol bench multitask" in result.stderr


def test_one_chembl_cell_then_the_report(tmp_path, shared_data, monkeypatch) -> None:
    monkeypatch.setattr(mt, "MODEL", TINY_MODEL)
    args = ["--datasets", "chembl-10", "--methods", "mtl", "--seeds", "0", "--epochs", "1"]
    args += ["--data-dir", str(shared_data), "--accelerator", "cpu"]
    result = _bench(tmp_path, *args)
    assert result.exit_code == 0, result.output
    rec = json.loads((tmp_path / "r/multitask/mtl/chembl-10/seed0.json").read_text())
    assert rec["n_molecules"] == 336 and rec["n_tasks"] == 146 and rec["epochs"] == 1
    assert rec["task_graph_edges"] == 245 and rec["paper_dataset"] == "ChEMBL-10"
    assert "chembl-10 / mtl / seed 0: 1 epochs on 336 mols x 146 tasks" in result.output
    page = (tmp_path / "r/multitask/README.md").read_bytes()
    assert b"| mtl (paper) | 74.83 \xc2\xb1 0.61 | 79.37" in page
    assert b"[1 ep] (n=1)" in page
    again = _bench(tmp_path, *args)
    assert again.exit_code == 0 and "chembl-10: all 1 runs done" in again.output
    report = runner.invoke(app, ["bench", "report", "multitask", "--out", str(tmp_path / "r")])
    assert report.exit_code == 0, report.output
    assert (tmp_path / "r/multitask/README.md").read_bytes() == page
    overview = (tmp_path / "r/README.md").read_text()
    assert "## Multi-task: SGNN-EBM table" in overview
