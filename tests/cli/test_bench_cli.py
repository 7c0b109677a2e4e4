"""`fewmol bench`: a classification cell (bundled set, 1 epoch, ~15-25 s), tiny DTA and regression
cells, the overview report, and user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fewmol.bench.run as bench_run
from fewmol.cli import app

pytestmark = [pytest.mark.cli, pytest.mark.filterwarnings("ignore:.*treespec.*")]

runner = CliRunner()


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
    model_dir = work / "classification" / "none" / "clintox" / "seed0-ep1"  # not the paper's 100
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


def test_another_epoch_budget_trains_in_its_own_work_dir(grid, monkeypatch) -> None:
    out, work, _ = grid
    seen = []

    class Stop(Exception):
        pass

    def record_dir(table, split, cfg, run_dir, **kwargs):
        seen.append((cfg.epochs, run_dir))
        raise Stop  # the cell's dir is known: no need to train

    monkeypatch.setattr(bench_run, "finetune", record_dir)
    args = _args(out, work)
    args[args.index("--epochs") + 1] = "2"
    with pytest.raises(Stop):
        runner.invoke(app, args, catch_exceptions=False)
    # the 1-epoch run of the grid fixture lives in seed0-ep1; 2 epochs must not resume it
    assert seen == [(2, work / "classification" / "none" / "clintox" / "seed0-ep2")]


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


def test_report_without_protocol_writes_the_overview(grid, tmp_path) -> None:
    out, _, result = grid
    assert "overview:" in result.output  # `bench run` refreshes the overview too
    overview = out / "README.md"
    overview.unlink()
    report = runner.invoke(app, ["bench", "report", "--out", str(out)])
    assert report.exit_code == 0, report.output
    text = overview.read_text()
    assert "## Classification: test ROC-AUC (%), scaffold split" in text
    assert "| none (paper) | 65.4 (2.4) |" in text
    assert (out / "plots" / "classification_bars.png").read_bytes().startswith(b"\x89PNG")
    missing = runner.invoke(app, ["bench", "report", "all", "--out", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in " ".join(missing.stderr.split())


TINY_DTA = {
    "num_layers": 2,
    "dim": 32,
    "protein_emb_dim": 8,
    "protein_filters": (8, 8, 8),
    "protein_kernel": 4,
    "mlp_hidden": (32, 16),
    "max_len": 200,
}


def _dta_args(out: Path, work: Path, data: Path, *extra: str) -> list[str]:
    return [
        "bench", "dta", "--datasets", "davis", "--seeds", "0", "--epochs", "1",
        "--max-pairs", "200", "--max-eval-pairs", "100", "--out", str(out), "--work", str(work),
        "--data-dir", str(data), "--accelerator", "cpu", *extra,
    ]  # fmt: skip


def test_bench_dta_on_a_tiny_slice_writes_a_record(shared_data, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(bench_run, "DTA_MODEL", TINY_DTA)
    out, work = tmp_path / "results", tmp_path / "work"
    result = runner.invoke(app, _dta_args(out, work, shared_data))
    assert result.exit_code == 0, result.output
    rec = json.loads((out / "dta" / "none" / "davis" / "seed0.json").read_text())
    assert (rec["protocol"], rec["metric"], rec["epochs"], rec["paper_epochs"]) == (
        "dta",
        "mse",
        1,
        100,
    )
    assert rec["test"] == rec["test_metrics"]["mse"] > 0
    assert 0.0 <= rec["test_ci"] == rec["test_metrics"]["ci"] <= 1.0
    assert rec["n_train_pairs"] == rec["max_pairs"] == 200 and rec["max_eval_pairs"] == 100
    assert rec["n_pairs"] == 30056 and rec["split"] == "deepdta-setting1"
    assert rec["split_sizes"] == {"train": 200, "valid": 100, "test": 100}
    assert rec["units"] == "pKd" and rec["valid_fold"] == 0 and rec["pretraining"] is None
    assert rec["model"]["dim"] == 32 and rec["train_pairs_per_s"] > 0
    assert rec["wall_time_s"] > 0 and rec["hardware"] and rec["command"] and "git_commit" in rec
    run_dir = work / "dta" / "none" / "davis" / "seed0-pairs200-eval100-ep1"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_at_best_valid"]["mse"] == pytest.approx(rec["test"])
    page = (out / "dta" / "README.md").read_text()
    assert "[1 ep] [200 train pairs] (n=1)" in page and "| none (paper) | 0.286 | 0.206 |" in page
    assert "## Drug–target affinity" in (out / "README.md").read_text()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    # the same budget is skipped; another --max-pairs is a different cell budget and reruns
    monkeypatch.setattr(bench_run, "train_dta", no_training)
    again = runner.invoke(app, _dta_args(out, work, shared_data))
    assert again.exit_code == 0 and "davis: all 1 runs done" in again.output
    rerun = runner.invoke(app, _dta_args(out, work, shared_data, "--max-pairs", "300"))
    assert isinstance(rerun.exception, AssertionError)


def test_bench_regression_records_mae_r2_and_the_encoder_budget(tmp_path) -> None:
    from fewmol.io.modeldir import build_encoder, encoder_hparams, save_encoder, weights_sha256

    enc = build_encoder(encoder_hparams("hu2019", num_layers=1, dim=16))
    pre = tmp_path / "pre"
    confs = {"min": 5, "mean": 5.0, "max": 5}
    save_encoder(
        pre, enc, "hu2019", method="graphmvp-c", epochs=10, epochs_done=3, complete=False,
        data={"source": "moses", "n_molecules": 500, "conformers_per_molecule": confs},
        wall_time_s=1234.5,
    )  # fmt: skip
    out, work = tmp_path / "results", tmp_path / "work"
    args = ["bench", "regression", "--datasets", "freesolv", "--methods", "graphmvp-c"]
    args += ["--pretrained", f"graphmvp-c={pre}", "--seeds", "0", "--epochs", "1"]
    result = runner.invoke(app, [*args, "--out", str(out), "--work", str(work)])
    assert result.exit_code == 0, result.output
    rec = json.loads((out / "regression" / "graphmvp-c" / "freesolv" / "seed0.json").read_text())
    assert rec["metric"] == "rmse" and rec["test"] == rec["test_metrics"]["rmse"]
    assert rec["test_metrics"]["mae"] > 0 and rec["test_metrics"]["r2"] <= 1.0
    budget = rec["pretraining"]
    assert (budget["method"], budget["molecules"], budget["conformers_per_molecule"]) == (
        "graphmvp-c",
        500,
        5.0,
    )
    assert (budget["epochs_done"], budget["epochs"], budget["wall_time_s"]) == (3, 10, 1234.5)
    # the exact weights the row was fine-tuned from (a copy saved again hashes the same)
    save_encoder(tmp_path / "again", enc, "hu2019")
    assert budget["weights_sha256"] == weights_sha256(tmp_path / "again")
    assert rec["init"] == str(pre) and rec["featurizer"] == "hu2019"
    # the model dir's verdict on its own test split is kept in the record
    assert 0.0 <= rec["calibration"]["test"]["coverage"] <= 1.0
    assert rec["calibration"]["coverage"] == 0.9
    assert 0.0 <= rec["applicability"]["test"]["in_domain_fraction"] <= 1.0
    text = (out / "README.md").read_text()
    assert "graphmvp-c on 500 molecules × 5 conformers, 3 of 10 epochs, 20.6 min" in text
    assert "Test MAE (ours" in text and "Test R² (ours" in text


def test_bad_bench_arguments_exit_2_before_any_work(tmp_path) -> None:
    out = ["--out", str(tmp_path / "r"), "--work", str(tmp_path / "w")]
    cases = [
        (["bench", "dta", "--datasets", "bindingdb"], "bindingdb not in protocol 'dta'"),
        (["bench", "dta", "--methods", "attrmask"], "--pretrained attrmask=ENCODER_DIR"),
        (["bench", "regression", "--max-pairs", "10"], "apply to the dta protocol"),
        (["bench", "run", "nope"], "unknown benchmark protocol 'nope'"),
        (["bench", "regression", "--methods", "none+morgan"], "after '+' comes a featuriser"),
    ]
    for args, message in cases:
        result = runner.invoke(app, [*args, *out])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert message in " ".join(result.stderr.split()), result.stderr
    assert not (tmp_path / "r").exists() and not (tmp_path / "w").exists()


def test_rf_baseline_row_beside_none(grid, monkeypatch) -> None:
    out, work, _ = grid
    monkeypatch.setattr(bench_run, "RF_TREES", 20)  # a small forest; the record says how many
    args = ["bench", "classification", "--datasets", "clintox", "--seeds", "0", "--methods", "rf"]
    result = runner.invoke(app, [*args, "--out", str(out), "--work", str(work)])
    assert result.exit_code == 0, result.output
    rec = json.loads((out / "classification" / "rf" / "clintox" / "seed0.json").read_text())
    none = json.loads((out / "classification" / "none" / "clintox" / "seed0.json").read_text())
    assert rec["method"] == "rf" and rec["epochs"] is None and rec["best_epoch"] is None
    assert rec["split_sizes"] == none["split_sizes"]  # the same scaffold split as the GNN
    assert rec["n_estimators"] == 20 and "Morgan counts" in rec["features"]
    assert 0.0 <= rec["test"] <= 1.0 and rec["test"] == rec["test_metrics"]["roc_auc"]
    assert rec["git_commit"] and rec["hardware"] and rec["features_wall_s"] >= 0
    page = (out / "classification" / "README.md").read_text()
    assert "| **rf** (ours) |" in page and "| **none** (ours) |" in page
    assert "**rf**: classical baseline, no GNN: a random forest (20 trees per task)" in page
    overview = (out / "README.md").read_text()
    assert "- **rf**: classical baseline, no GNN" in overview
    assert not (out / "plots" / "classification_gain.png").exists()  # rf is no pre-training
    assert "None ep" not in page and "| rf | clintox | 0 | – |" in page
    again = runner.invoke(app, [*args, "--out", str(out), "--work", str(work)])
    assert again.exit_code == 0 and "clintox: all 1 runs done" in again.output
    monkeypatch.setattr(bench_run, "RF_TREES", 30)  # another forest size is another budget
    bigger = runner.invoke(app, [*args, "--out", str(out), "--work", str(work)])
    assert bigger.exit_code == 0 and "30 trees per task" in bigger.output


def test_rf_is_refused_for_dta(tmp_path) -> None:
    args = ["bench", "dta", "--methods", "rf", "--out", str(tmp_path / "r")]
    result = runner.invoke(app, [*args, "--work", str(tmp_path / "w")])
    assert result.exit_code == 2 and "not to the dta protocol" in " ".join(result.stderr.split())


def test_a_featuriser_row_beside_none(tmp_path) -> None:
    out, work = tmp_path / "results", tmp_path / "work"
    args = ["bench", "regression", "--datasets", "freesolv", "--methods", "none+ogb"]
    args += ["--seeds", "0", "--epochs", "1", "--out", str(out), "--work", str(work)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rec = json.loads((out / "regression" / "none+ogb" / "freesolv" / "seed0.json").read_text())
    assert rec["method"] == "none+ogb" and rec["featurizer"] == "ogb" and rec["init"] is None
    model = json.loads((work / "regression" / "none+ogb" / "freesolv" / "seed0-ogb-ep1" /
                        "config.json").read_text())  # fmt: skip
    assert model["featurizer"] == "ogb"
    assert "none+ogb" in (out / "README.md").read_text()


def test_train_size_cuts_the_training_split_alike_for_every_method(tmp_path, monkeypatch) -> None:
    out, work = tmp_path / "results", tmp_path / "work"
    seen = {}

    def record_split(table, split, cfg, run_dir, **kwargs):
        seen[(cfg.extra["method"], cfg.seed)] = (split, run_dir)
        return {
            "test_at_best_valid": {"roc_auc": 0.6},
            "test_at_last_epoch": {"roc_auc": 0.6},
            "best_valid": {"roc_auc": 0.6},
            "best_epoch": 1,
            "n_molecules": len(table.smiles),
            "split_sizes": split.sizes(),
            "wall_time_s": 1.0,
        }

    monkeypatch.setattr(bench_run, "finetune", record_split)
    args = _args(out, work)
    args[args.index("--seeds") + 1] = "0,1"
    args += ["--train-size", "40", "--methods", "none,none+ogb"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (s0, d0), (s0b, _), (s1, _) = seen[("none", 0)], seen[("none+ogb", 0)], seen[("none", 1)]
    assert len(s0.train) == 40 and d0.name == "seed0-ep1-n40"
    assert s0.train.tolist() == s0b.train.tolist()  # the same molecules for both methods
    assert s0.train.tolist() != s1.train.tolist()  # another seed draws others
    rec = json.loads((out / "classification" / "none" / "clintox" / "seed0.json").read_text())
    assert rec["train_size"] == 40 and rec["split_sizes"]["train"] == 40
    # valid and test are the whole scaffold split's, as without --train-size
    seen.clear()
    runner.invoke(app, _args(tmp_path / "full", tmp_path / "wfull"))
    full_split = seen[("none", 0)][0]
    assert s0.valid.tolist() == full_split.valid.tolist()
    assert s0.test.tolist() == full_split.test.tolist()
    assert set(s0.train) <= set(full_split.train)
    # a finished train-size cell is not a whole-split cell, nor one of another size
    assert not bench_run._done(
        out / "classification" / "none" / "clintox" / "seed0.json",
        {"epochs": 1, "precision": "32-true", "featurizer": "hu2019", "train_size": None},
    )
    bad = runner.invoke(app, [*_args(out, work), "--train-size", "1"])
    assert bad.exit_code == 2 and "--train-size needs at least 2" in bad.output
