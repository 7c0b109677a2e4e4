"""`fewmol dta` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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
    _user_error(runner.invoke(app, ["dta", "bindingdb", *out]), "neither a DTA dataset")
    _user_error(runner.invoke(app, ["dta", "davis", *out, "--split", "cold-drug"]), "--split")
    _user_error(runner.invoke(app, ["dta", "davis", *out, "--mlp-hidden", "a,b"]), "--mlp-hidden")
    _user_error(runner.invoke(app, ["dta", "davis", *out, "--ligands", "smiles"]), "--ligands")
    _user_error(
        runner.invoke(app, ["dta", "kiba", *out, "--init", str(tmp_path / "nope")]), "--init"
    )


def test_predict_on_a_dta_dir_reproduces_the_run_and_flags_bad_rows(
    shared_data: Path, tmp_path: Path, monkeypatch
) -> None:
    import numpy as np
    import pandas as pd

    from fewmol.data.dta import load_dta

    monkeypatch.setenv("FEWMOL_DATA", str(shared_data))
    run = tmp_path / "run"
    args = ["dta", "davis", "--epochs", "1", "--max-pairs", "300", "--out", str(run), *TINY]
    assert runner.invoke(app, [*args, "--data-dir", str(shared_data)]).exit_code == 0
    data = load_dta("davis", shared_data)
    done = pd.read_csv(run / "predictions.csv")
    pairs = done["pair"].to_numpy()
    table = pd.DataFrame(
        {
            "Drug SMILES": [data.smiles[i] for i in data.drug_idx[pairs]],
            "Target Sequence": [data.proteins.sequence(j) for j in data.prot_idx[pairs]],
        }
    )
    seq0 = table.loc[0, "Target Sequence"]
    table.loc[len(table)] = ["C1CC", seq0]  # unparsable SMILES
    table.loc[len(table)] = ["CCO", "MKV-123"]  # not a sequence
    table.loc[len(table)] = ["CCO", ""]  # no sequence
    inp, out = tmp_path / "pairs.csv", tmp_path / "pred.csv"
    table.to_csv(inp, index=False)
    result = runner.invoke(app, ["predict", str(run), str(inp), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "truncated to 200" in " ".join(result.stderr.split())
    pred = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert len(pred) == len(table) and pred["row"].tolist() == list(range(len(table)))
    n = len(done)
    assert pred["valid"].tolist() == [True] * n + [False] * 3
    # the same weights on the same pairs: the run's own (best-epoch) test/valid predictions
    np.testing.assert_allclose(pred["pKd_pred"][:n], done["prediction"], atol=1e-4)
    errors = pred["error"].tolist()[n:]
    assert "invalid SMILES" in errors[0]
    assert "other than amino-acid letters" in errors[1] and "empty protein" in errors[2]
    assert pred["pKd_pred"][n:].isna().all()

    # evaluate: the measured pKd beside each pair gives the run's own MSE on those pairs
    from fewmol.dta.module import dta_metrics

    table["pKd"] = list(done["pKd"]) + [7.0, 7.0, 7.0]
    table.to_csv(inp, index=False)
    report = tmp_path / "eval.json"
    result = runner.invoke(app, ["evaluate", str(run), str(inp), "--out", str(report)])
    assert result.exit_code == 0, result.output
    r = json.loads(report.read_text())
    expected = dta_metrics(done["pKd"].to_numpy(), done["prediction"].to_numpy())
    assert r["n_evaluated"] == n and [b["row"] for b in r["bad_rows"]] == [n, n + 1, n + 2]
    assert r["metrics"]["mse"] == pytest.approx(expected["mse"], rel=1e-4)
    assert r["metrics"]["ci"] == pytest.approx(expected["ci"], abs=1e-6)
    table.drop(columns="pKd").to_csv(inp, index=False)
    _user_error(runner.invoke(app, ["evaluate", str(run), str(inp)]), "measured affinities")

    no_protein = tmp_path / "smiles_only.csv"
    table[["Drug SMILES"]].to_csv(no_protein, index=False)
    _user_error(
        runner.invoke(app, ["predict", str(run), str(no_protein), "--out", str(out)]),
        "--protein-col",
    )


def test_a_csv_of_pairs_trains_with_a_cold_split_and_lists_bad_rows(
    shared_data: Path, tmp_path: Path
) -> None:
    import pandas as pd

    from fewmol.data.dta import load_dta

    data = load_dta("davis", shared_data)
    pick = np.random.default_rng(0).choice(data.n_pairs, 400, replace=False)
    table = pd.DataFrame(
        {
            "smiles": [data.smiles[i] for i in data.drug_idx[pick]],
            "target_sequence": [data.proteins.sequence(j) for j in data.prot_idx[pick]],
            "pKd": data.affinity[pick],
        }
    )
    table.loc[len(table)] = ["C1CC", table.loc[0, "target_sequence"], 6.0]
    table.loc[len(table)] = ["CCO", "MKV-1", 6.0]
    path = tmp_path / "my_pairs.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "run"
    args = ["dta", str(path), "--epochs", "1", "--split", "cold-drug", "--out", str(out), *TINY]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    # Davis mutants share their wild type's sequence: 3 sampled pairs repeat a (drug, sequence)
    text = " ".join(result.stderr.split())
    assert "read 402 rows: 397 kept (3 replicates merged into them), 2 invalid" in text
    assert "my_pairs: test MSE" in result.stdout
    bad = pd.read_csv(out / "bad_rows.csv")
    invalid = bad[~bad["reason"].str.startswith("replicate of row")]
    assert invalid["row"].tolist() == [400, 401]
    config = json.loads((out / "config.json").read_text())
    assert config["units"] == "pKd" and config["split"] == "cold-drug(seed=0)"
    pred = pd.read_csv(out / "predictions.csv")
    assert {"row", "line", "drug", "protein", "pKd", "prediction"} <= set(pred.columns)
    # cold-drug: no valid or test drug was trained on
    from fewmol.data.dta_table import load_dta_table

    split = json.loads((out / "split.json").read_text())
    pairs, _ = load_dta_table(path)
    drug = pairs.drug_idx
    seen = set(drug[split["train"]].tolist())
    assert split["test"] and not seen & set(drug[split["test"]].tolist())
    # the table's own affinities come back beside the predictions, row by row
    np.testing.assert_allclose(pred["pKd"], table["pKd"].to_numpy()[pred["row"]], rtol=1e-6)
    wrong = ["dta", str(path), "--ligands", "can", "--out", str(tmp_path / "y")]
    _user_error(runner.invoke(app, wrong), "--valid-fold and --ligands are for davis and kiba")
