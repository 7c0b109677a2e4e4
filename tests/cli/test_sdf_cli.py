"""SD files through the CLI: fine-tune on one, predict another, long format refused."""

from __future__ import annotations

import pandas as pd
from rdkit import Chem

from cli_helpers import cli_ok, cli_user_error

SMILES = ["CCO", "CCN", "CCC", "CCCl", "c1ccccc1", "c1ccccc1O", "CC(=O)O", "OCCO", "CCOC", "CNC"]


def _write_sdf(path, smiles, with_labels=True):
    w = Chem.SDWriter(str(path))
    for i, s in enumerate(smiles):
        mol = Chem.MolFromSmiles(s)
        mol.SetProp("_Name", f"cpd{i}")
        if with_labels:
            mol.SetProp("pIC50", f"{5 + (i % 5) * 0.5:.1f}")
        w.write(mol)
    w.close()


def test_finetune_and_predict_on_sd_files(tmp_path):
    train = tmp_path / "train.sdf"
    _write_sdf(train, SMILES * 3)  # repeats: merged with --duplicates merge
    out = tmp_path / "m"
    args = ["finetune", train, "--out", out, "--epochs", "2", "--num-layers", "2"]
    cli_ok([*args, "--hidden", "16", "--split", "random", "--duplicates", "merge", "-q"])
    new = tmp_path / "new.sdf"
    _write_sdf(new, ["CCBr", "c1ccncc1"], with_labels=False)
    text = new.read_text().replace("Br", "Xx", 1)  # an element RDKit does not know
    new.write_text(text)
    preds = tmp_path / "p.csv"
    cli_ok(["predict", out, new, "--out", preds])
    df = pd.read_csv(preds)
    assert df["name"].tolist() == ["cpd0", "cpd1"]  # the records' titles are kept
    assert df["valid"].tolist() == [False, True]
    assert "RDKit could not read" in df["error"][0]
    assert df["pIC50_pred"].notna().tolist() == [False, True]


def test_sd_file_long_format_is_refused(tmp_path):
    path = tmp_path / "a.sdf"
    _write_sdf(path, SMILES)
    cli_user_error(
        ["finetune", path, "--out", tmp_path / "x", "--task-col", "name", "--label-col", "pIC50"],
        "long format (--task-col) reads CSV/TSV tables",
    )
