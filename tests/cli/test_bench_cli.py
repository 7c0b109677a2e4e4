"""`fewmol bench run/report` on one bundled dataset, one seed, one epoch (~15 s)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import fewmol.bench.run as bench_run
from fewmol.cli import app

pytestmark = [pytest.mark.cli, pytest.mark.filterwarnings("ignore:.*treespec.*")]

runner = CliRunner()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _args(out: Path, work: Path) -> list[str]:
    return ["bench", "run", "classification", "--datasets", "clintox", "--seeds", "0"] + [
        "--epochs",
        "1",
        "--out",
        str(out),
        "--work",
        str(work),
        "--accelerator",
        "cpu",
    ]


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> tuple[Path, Path, object]:
    root = tmp_path_factory.mktemp("bench")
    out, work = root / "results", root / "work"
    result = runner.invoke(app, _args(out, work))
    assert result.exit_code == 0, result.output
    return out, work, result


def test_run_writes_the_cell_json(grid) -> None:
    out, work, result = grid
    cell = out / "classification" / "none" / "clintox" / "seed0.json"
    rec = json.loads(cell.read_text())
    for key in ("test", "epochs", "git_commit", "hardware", "command", "wall_time_s"):
        assert key in rec, key
    assert rec["epochs"] == 1 and rec["paper_epochs"] == 100
    assert (rec["protocol"], rec["method"], rec["dataset"], rec["seed"]) == (
        "classification",
        "none",
        "clintox",
        0,
    )
    assert rec["metric"] == "roc_auc" and 0.0 <= rec["test"] <= 1.0
    assert rec["wall_time_s"] > 0 and rec["hardware"]
    assert rec["split"] == "scaffold" and sum(rec["split_sizes"].values()) == rec["n_molecules"]
    assert rec["n_molecules"] > 1000
    model_dir = work / "classification" / "none" / "clintox" / "seed0"
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["test_at_best_valid"]["roc_auc"] == pytest.approx(rec["test"])
    assert "clintox / none / seed 0: 1 epochs" in result.output


def test_readme_has_ours_and_the_paper_row(grid) -> None:
    out, _, result = grid
    readme = out / "classification" / "README.md"
    text = readme.read_text()
    rec = json.loads((out / "classification" / "none" / "clintox" / "seed0.json").read_text())
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| method |"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    ours = next(line for line in lines if line.startswith("| **none** (ours) |"))
    paper = next(line for line in lines if line.startswith("| none (paper) |"))
    ours_cells = dict(zip(cols, (c.strip() for c in ours.strip("|").split("|"))))
    paper_cells = dict(zip(cols, (c.strip() for c in paper.strip("|").split("|"))))
    assert ours_cells["clintox"].startswith(f"{rec['test'] * 100:.1f} ± 0.0")
    assert "[1 ep]" in ours_cells["clintox"] and "(n=1)" in ours_cells["clintox"]
    assert ours_cells["bbbp"] == "–"
    assert paper_cells["clintox"] == "58.8 (5.5)"  # GraphMVP Table 1, labelled as the paper's
    assert "README.md" in result.output


def test_rerun_skips_the_finished_cell(grid, monkeypatch) -> None:
    out, work, _ = grid
    cell = out / "classification" / "none" / "clintox" / "seed0.json"
    before = (cell.stat().st_mtime_ns, cell.read_bytes())

    def no_training(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(bench_run, "finetune", no_training)
    result = runner.invoke(app, _args(out, work))
    assert result.exit_code == 0, result.output
    assert "clintox: all 1 runs done" in result.output
    assert (cell.stat().st_mtime_ns, cell.read_bytes()) == before


def test_report_rebuilds_the_same_page(grid) -> None:
    out, _, _ = grid
    readme = out / "classification" / "README.md"
    before = readme.read_bytes()
    readme.unlink()
    result = runner.invoke(app, ["bench", "report", "classification", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert readme.read_bytes() == before


def test_unknown_dataset_exits_2(tmp_path) -> None:
    args = _args(tmp_path / "r", tmp_path / "w")
    args[args.index("clintox")] = "no_such_set"
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    err = " ".join(result.stderr.split())
    assert err.startswith("error:") and "no_such_set" in err and "clintox" in err
    assert not (tmp_path / "r" / "classification" / "none").exists()


def test_unknown_protocol_exits_2(tmp_path) -> None:
    result = runner.invoke(app, ["bench", "report", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "unknown benchmark protocol 'nope'" in " ".join(result.stderr.split())
