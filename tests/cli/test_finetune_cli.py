"""`fewmol finetune` through typer's CliRunner (and once through the real console script)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fewmol.cli import app
from fewmol.cli import common as cli_common
from fewmol.data.tables import read_table

pytestmark = [pytest.mark.cli, pytest.mark.filterwarnings("ignore:.*treespec.*")]

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.csv"
SMALL = ["--epochs", "2", "--num-layers", "2", "--hidden", "32", "--batch-size", "16", "-q"]
SMALL += ["--accelerator", "cpu"]
BAD_ROWS = {43: "invalid SMILES", 47: "invalid SMILES", 51: "invalid SMILES"}
BAD_ROWS |= {55: "empty SMILES", 59: "duplicate of row 16", 63: "no labels"}
SUMMARY = (
    "read 76 rows: 70 kept, 6 invalid (3 invalid SMILES, 1 empty SMILES, "
    "1 row without labels, 1 duplicate); see "
)
runner = CliRunner()


def _finetune(*args: str):
    return runner.invoke(app, ["finetune", *args, *SMALL])


def _flat(text: str) -> str:
    """Output with line wrapping undone (rich wraps at the console width)."""
    return " ".join(text.split())


def _user_error(result, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stderr.count("error:") == 1, result.stderr
    err = _flat(result.stderr[result.stderr.index("error:") :])
    for f in fragments:
        assert f in err, (f, err)
    return err


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "model"
    result = _finetune(str(TINY), "--out", str(out))
    return out, result


def test_autodetects_columns_and_reports_bad_rows(default_run) -> None:
    out, result = default_run
    assert result.exit_code == 0, result.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["smiles_col"] == "Canonical SMILES"
    assert cfg["target_names"] == ["Acid (active=1)", "N-count > 0 [class]"]
    assert cfg["task_type"] == "classification"
    bad = pd.read_csv(out / "bad_rows.csv", keep_default_na=False)
    assert list(bad.columns) == ["row", "line", "smiles", "column", "reason"]
    assert dict(zip(bad["row"], bad["reason"])).keys() == BAD_ROWS.keys()
    for row, reason in zip(bad["row"], bad["reason"]):
        assert reason.startswith(BAD_ROWS[row]), (row, reason)
    assert (bad["line"] == bad["row"] + 2).all()
    assert SUMMARY + str(out / "bad_rows.csv") in _flat(result.stderr)
    assert "note: task type: classification, inferred from the labels" in _flat(result.stderr)
    assert "seed 0: test roc_auc = " in _flat(result.stdout)
    for name in ("model.safetensors", "metrics.json", "predictions.csv", "train_log.csv"):
        assert (out / name).is_file(), name
    assert len(pd.read_csv(out / "predictions.csv")) == 70


def test_summary_is_one_line_in_logs(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(cli_common.err_console, "_width", 80)  # a pipe / CI log
    result = _finetune(str(TINY), "--out", str(tmp_path / "m"), "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert SUMMARY + str(tmp_path / "m" / "bad_rows.csv") in result.stderr.splitlines()


def test_on_invalid_error_names_the_rows(tmp_path) -> None:
    out = tmp_path / "m"
    result = _finetune(str(TINY), "--out", str(out), "--on-invalid", "error")
    err = _user_error(result, "6 invalid row(s)", "--on-invalid skip")
    for row in (43, 47, 51):
        assert f"row {row}" in err
    assert not (out / "config.json").exists()


def test_duplicates_merge_lists_replicates_and_records_the_choice(tmp_path) -> None:
    out = tmp_path / "m"
    result = _finetune(str(TINY), "--out", str(out), "--epochs", "1", "--duplicates", "merge")
    assert result.exit_code == 0, result.output
    assert "kept (1 replicates merged into them), 5 invalid" in _flat(result.stderr)
    bad = pd.read_csv(out / "bad_rows.csv", keep_default_na=False)
    merged = bad[bad["reason"].str.startswith("replicate of row")]
    assert len(merged) == 1 and "its labels were merged into that row" in merged["reason"].iloc[0]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"]["duplicates"] == {"mode": "merge", "merged_rows": 1}


def test_long_format_regression_averages_replicates(tmp_path) -> None:
    wide = pd.read_csv(TINY, dtype=str, keep_default_na=False).rename(
        columns={"Canonical SMILES": "smiles"}
    )[["smiles"]]
    rng = np.random.default_rng(0)
    rows = []
    for k, smi in enumerate(wide["smiles"]):
        for target in ("EGFR", "ABL1"):
            for _ in range(1 + k % 3):  # 1-3 replicates per molecule and target
                rows.append((smi, target, f"{rng.normal(6, 1):.2f}"))
    path = tmp_path / "pic50_long.csv"
    pd.DataFrame(rows, columns=["smiles", "target", "pIC50"]).to_csv(path, index=False)
    out = tmp_path / "m"
    result = _finetune(str(path), "--out", str(out), "--epochs", "1", "--task-col", "target",
                       "--label-col", "pIC50")  # fmt: skip
    assert result.exit_code == 0, result.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["target_names"] == ["EGFR", "ABL1"] and cfg["task_type"] == "regression"
    assert cfg["data"]["long_format"] == {"task_col": "target", "label_col": "pIC50", "tasks": 2}
    assert "replicates merged into them" in _flat(result.stderr)
    _user_error(_finetune(str(path), "--out", str(tmp_path / "x"), "--label-col", "pIC50"),
                "--task-col and --label-col go together")  # fmt: skip


def test_the_featuriser_follows_the_init_encoder(tmp_path) -> None:
    from fewmol.io.modeldir import build_encoder, encoder_hparams, save_encoder

    pre = tmp_path / "pre_ogb"
    save_encoder(pre, build_encoder(encoder_hparams("ogb", num_layers=2, dim=16)), "ogb")
    out = tmp_path / "m"
    args = [str(TINY), "--init", str(pre), "--epochs", "1", "--num-layers", "2", "--hidden", "16"]
    result = _finetune(*args, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["featurizer"] == "ogb"
    _user_error(
        _finetune(*args, "--featurizer", "hu2019", "--out", str(tmp_path / "x")),
        "trained with featurizer 'ogb'",
    )


def test_from_scratch_uses_ogb_features_unless_told(tmp_path) -> None:
    reg = TINY.parent / "tiny_regression.csv"
    small = ["--epochs", "1", "--num-layers", "2", "--hidden", "16", "--split", "random"]
    for data, name in ((reg, "r"), (TINY, "c")):  # regression and classification
        out = tmp_path / name
        result = _finetune(str(data), "--out", str(out), *small)
        assert result.exit_code == 0, result.output
        assert json.loads((out / "config.json").read_text())["featurizer"] == "ogb"
        assert "note: featuriser ogb (the default from scratch" in _flat(result.stderr)
    # asked for, or already chosen by the run being resumed: kept
    old = tmp_path / "old"
    result = _finetune(str(reg), "--out", str(old), "--featurizer", "hu2019", *small)
    assert result.exit_code == 0 and "featuriser ogb" not in result.stderr
    more = [a if a != "1" else "2" for a in small]
    result = _finetune(str(reg), "--out", str(old), "--resume", *more)
    assert result.exit_code == 0, result.output
    assert "featuriser ogb" not in result.stderr
    cfg = json.loads((old / "config.json").read_text())
    assert cfg["featurizer"] == "hu2019"
    assert json.loads((old / "metrics.json").read_text())["epochs_done"] == 2


@pytest.fixture
def text_labels_csv(tmp_path) -> Path:
    path = tmp_path / "text_labels.csv"
    path.write_text("smiles,active\nCCO,yes\nc1ccccc1,no\nCC(=O)O,yes\nCCN,no\n")
    return path


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["missing_file.csv"], ["'missing_file.csv' is neither a file nor a known dataset"]),
        (["no_such_dataset"], ["'no_such_dataset'", "known: ", "clintox"]),
        ([str(TINY), "--smiles-col", "smile"], ["column 'smile' not found", "--smiles-col"]),
        (
            [str(TINY), "--target-cols", "Acid (active=1),potency"],
            ["column 'potency' not found", "--target-cols"],
        ),
        (
            [str(TINY), "--duplicates", "average"],
            ["--duplicates must be one of first, merge, keep", "'average'"],
        ),
    ],
    ids=["missing-file", "unknown-dataset", "wrong-smiles-col", "wrong-target-col", "duplicates"],
)
def test_user_errors_exit_2(tmp_path, args, fragments) -> None:
    _user_error(_finetune(*args, "--out", str(tmp_path / "m")), *fragments)
    assert not (tmp_path / "m" / "config.json").exists()


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        ([], ["no label columns found", "active", "--target-cols"]),
        (["--target-cols", "active"], ["non-numeric label 'yes' in column 'active'", "row 0"]),
    ],
    ids=["auto-detect", "named"],
)
def test_non_numeric_labels_for_classification(tmp_path, text_labels_csv, extra, fragments):
    out = tmp_path / "m"
    result = _finetune(str(text_labels_csv), *extra, "--task", "classification", "--out", str(out))
    _user_error(result, *fragments)


def test_error_message_keeps_brackets_in_column_names(tmp_path) -> None:
    result = _finetune(str(TINY), "--smiles-col", "smile", "--out", str(tmp_path / "m"))
    _user_error(result, "N-count > 0 [class]")


def _fewmol_exe() -> str:
    exe = Path(sys.executable).parent / "fewmol"
    if exe.exists():
        return str(exe)
    found = shutil.which("fewmol")
    if found is None:
        pytest.skip("the fewmol console script is not installed")
    return found


def test_console_script_prints_error_not_traceback(tmp_path) -> None:
    proc = subprocess.run(
        [_fewmol_exe(), "finetune", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error:"), proc.stderr
    assert "nope.csv" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_several_seeds_write_one_dir_each_and_a_summary(tmp_path) -> None:
    out = tmp_path / "seeds"
    result = _finetune(str(TINY), "--out", str(out), "--seeds", "0,1")
    assert result.exit_code == 0, result.output
    for seed in (0, 1):
        metrics = json.loads((out / f"seed{seed}" / "metrics.json").read_text())
        assert metrics["seed"] == seed
        assert (out / f"seed{seed}" / "model.safetensors").is_file()
        assert f"seed {seed}: test roc_auc" in _flat(result.stdout)
    assert not (out / "model.safetensors").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_seeds"] == 2 and summary["seeds"] == [0, 1]
    roc = summary["test_at_best_valid"]["roc_auc"]
    assert len(roc["values"]) == 2
    assert roc["mean"] == pytest.approx(sum(roc["values"]) / 2)
    assert "over seeds [0, 1]" in _flat(result.stdout)


def _split_json(out: Path) -> dict:
    return json.loads((out / "split.json").read_text())


def _check_partition(split: dict, n: int) -> None:
    parts = split["train"] + split["valid"] + split["test"]
    assert sorted(parts) == list(range(n))


def test_split_random(tmp_path) -> None:
    result = _finetune(str(TINY), "--out", str(tmp_path), "--split", "random")
    assert result.exit_code == 0, result.output
    split = _split_json(tmp_path)
    assert split["kind"] == "random(seed=0)"
    assert [len(split[k]) for k in ("train", "valid", "test")] == [56, 7, 7]
    _check_partition(split, 70)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["training"]["extra"]["split"] == "random"
    preds = pd.read_csv(tmp_path / "predictions.csv")
    assert preds.index[preds["split"] == "test"].tolist() == split["test"]


def _labels(n: int) -> list[str]:
    names = {0: "test", 1: "valid", 2: "val", 3: "testing"}
    return [names.get(i % 7, "train") for i in range(n)]


def _expected(labels: list[str], rows) -> dict[str, list[int]]:
    norm = {"val": "valid", "testing": "test"}
    kept = [norm.get(labels[r], labels[r]) for r in rows]
    return {k: [i for i, lab in enumerate(kept) if lab == k] for k in ("train", "valid", "test")}


def test_split_from_a_column(tmp_path) -> None:
    df = pd.read_csv(TINY, dtype=str, keep_default_na=False)
    df["fold"] = _labels(len(df))
    data = tmp_path / "with_fold.csv"
    df.to_csv(data, index=False)
    out = tmp_path / "m"
    result = _finetune(str(data), "--out", str(out), "--split", "column:fold")
    assert result.exit_code == 0, result.output
    table = read_table(data)
    assert json.loads((out / "config.json").read_text())["target_names"] == table.target_names
    split = _split_json(out)
    assert split["kind"] == "custom"
    expected = _expected(df["fold"].tolist(), table.rows)
    assert {k: split[k] for k in expected} == expected
    _check_partition(split, 70)


def test_split_from_a_file(tmp_path) -> None:
    labels = _labels(76)[::-1]
    path = tmp_path / "my_split.csv"
    pd.DataFrame({"split": labels}).to_csv(path, index=False)
    out = tmp_path / "m"
    result = _finetune(str(TINY), "--out", str(out), "--split", str(path))
    assert result.exit_code == 0, result.output
    split = _split_json(out)
    assert split["kind"] == "custom"
    expected = _expected(labels, read_table(TINY).rows)
    assert {k: split[k] for k in expected} == expected
    preds = pd.read_csv(out / "predictions.csv")
    assert preds.index[preds["split"] == "valid"].tolist() == expected["valid"]


def test_split_file_with_wrong_length(tmp_path) -> None:
    path = tmp_path / "short.csv"
    pd.DataFrame({"split": ["train"] * 10}).to_csv(path, index=False)
    result = _finetune(str(TINY), "--out", str(tmp_path / "m"), "--split", str(path))
    _user_error(result, "10 split labels", "76 rows")


def test_folds_give_out_of_fold_predictions_for_every_molecule(tmp_path: Path) -> None:
    import numpy as np

    from fewmol.finetune.metrics import classification_metrics

    out = tmp_path / "cv"
    result = _finetune(str(TINY), "--folds", "3", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "out-of-fold roc_auc of all 70 molecules" in _flat(result.stdout)
    oof = pd.read_csv(out / "oof_predictions.csv")
    kept = [r for r in range(76) if r not in BAD_ROWS]
    assert oof["row"].tolist() == kept  # every kept molecule once, in input order
    summary = json.loads((out / "cv_summary.json").read_text())
    assert summary["n_folds"] == 3 and summary["split"] == "scaffold"
    for k in range(3):
        split = json.loads((out / f"fold{k}" / "split.json").read_text())
        tested = oof.loc[oof["fold"] == k, "row"].to_numpy()
        # split.json indexes kept rows; the fold's test molecules are its oof rows
        assert sorted(np.asarray(kept)[split["test"]].tolist()) == sorted(tested.tolist())
        fold_metrics = json.loads((out / f"fold{k}" / "metrics.json").read_text())
        assert summary["test_at_best_valid"]["roc_auc"]["values"][k] == pytest.approx(
            fold_metrics["test_at_best_valid"]["roc_auc"]
        )
    tasks = ["Acid (active=1)", "N-count > 0 [class]"]
    y = oof[tasks].to_numpy(float)
    p = oof[[f"{t}_pred" for t in tasks]].to_numpy(float)
    pooled = classification_metrics(y, p)["roc_auc"]
    assert summary["out_of_fold"]["roc_auc"] == pytest.approx(pooled)
    # the cross-validation dir predicts new molecules with the mean of its fold models
    preds, members = tmp_path / "p.csv", tmp_path / "m.csv"
    args = ["predict", str(out), str(TINY), "--out", str(preds), "--members-out", str(members)]
    assert runner.invoke(app, args).exit_code == 0
    mean, per_fold = pd.read_csv(preds), pd.read_csv(members)
    for t in tasks:
        folds_t = per_fold[[f"{t}_fold{k}" for k in range(3)]].to_numpy()
        np.testing.assert_allclose(mean[f"{t}_pred"], folds_t.mean(1), atol=1e-6)
    report = tmp_path / "eval.json"
    assert (
        runner.invoke(app, ["evaluate", str(out), str(TINY), "--out", str(report)]).exit_code == 0
    )
    own = json.loads(report.read_text())["model_test_at_best_valid"]["roc_auc"]
    assert own == pytest.approx(summary["test_at_best_valid"]["roc_auc"]["mean"])
    again = _finetune(str(TINY), "--folds", "3", "--out", str(out), "--resume")
    assert again.exit_code == 0, again.output
    assert json.loads((out / "cv_summary.json").read_text()) == summary  # finished folds kept


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--folds", "1"], "at least 2 folds"),
        (["--folds", "3", "--seeds", "0,1"], "one model per fold"),
        (["--folds", "3", "--split", "column:x"], "--split scaffold or random"),
    ],
)
def test_bad_fold_options_exit_2(tmp_path: Path, extra: list[str], fragment: str) -> None:
    result = _finetune(str(TINY), "--out", str(tmp_path / "x"), *extra)
    assert result.exit_code == 2, result.output
    assert fragment in _flat(result.stderr)


def test_tune_copies_the_best_validation_trial_to_out(tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    result = _finetune(str(TINY), "--tune", "3", "--out", str(out))
    assert result.exit_code == 0, result.output
    trials = pd.read_csv(out / "trials.csv")
    tune = json.loads((out / "tune.json").read_text())
    assert len(trials) == 3 and trials.loc[0, "lr"] == 0.001  # trial 0: the given settings
    best = int(trials["valid_roc_auc"].idxmax())  # first of the best, as is_better keeps
    assert tune["best_trial"] == best
    winner = out / "trials" / f"trial{best:03d}"
    assert (out / "model.safetensors").read_bytes() == (winner / "model.safetensors").read_bytes()
    assert json.loads((out / "config.json").read_text())["training"]["lr"] == trials.loc[best, "lr"]
    assert "best of 3 trials by validation" in _flat(result.stdout)
    pred = runner.invoke(app, ["predict", str(out), str(TINY), "--out", str(tmp_path / "p.csv")])
    assert pred.exit_code == 0, pred.output


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--tune", "1"], "at least 2 trials"),
        (["--tune", "3", "--folds", "3"], "searches one model"),
        (["--tune", "3", "--baseline", "rf"], "separate finetune"),
    ],
)
def test_bad_tune_options_exit_2(tmp_path: Path, extra: list[str], fragment: str) -> None:
    result = _finetune(str(TINY), "--out", str(tmp_path / "x"), *extra)
    assert result.exit_code == 2, result.output
    assert fragment in _flat(result.stderr)


def test_a_set_too_small_to_score_says_why_instead_of_a_bare_nan(tmp_path) -> None:
    csv = tmp_path / "three.csv"
    csv.write_text("smiles,act\nCCO,1\nc1ccccc1,0\nCCN,1\n")
    result = _finetune(str(csv), "--out", str(tmp_path / "m"))
    assert result.exit_code == 0, result.output
    # three molecules: scaffold split 2 / 0 / 1, so neither a validation score nor a test AUC
    assert "at the last epoch, 2 (no validation score to choose by)" in result.stdout
    assert "note: no test roc_auc: no task has both classes among the 1 test molecules" in (
        result.stderr
    )
    normal = _finetune(str(TINY), "--out", str(tmp_path / "n"))
    assert "at best-valid epoch" in normal.stdout and "note: no test" not in normal.stderr


def test_a_lone_training_molecule_is_a_user_error(tmp_path) -> None:
    # a scaffold split of nine acyclic molecules and benzene: the acyclic group fills the
    # validation set and benzene trains alone, which makes no batch (batch norm): before the
    # check, nothing trained and the run ended on a missing weights file
    acyclic = ["CCO", "CCN", "CCC", "CCCC", "CCOC", "CCCN", "CCCO", "CCCCO", "CCCCN"]
    rows = [f"{s},{i % 2}" for i, s in enumerate([*acyclic, "c1ccccc1"])]
    data = tmp_path / "ten.csv"
    data.write_text("smiles,y\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    err = _user_error(_finetune(str(data), "--out", str(out)), "training split holds one molecule")
    assert "'train': 1" in err and "10 molecules were kept" in err
    assert not (out / "model.safetensors").exists()
