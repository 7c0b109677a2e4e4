"""`fewmol conformers` through typer's CliRunner (registered on a local app)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from rdkit import Chem
from rdkit.Chem import AllChem
from typer.testing import CliRunner

from fewmol.cli.conformers import conformers
from fewmol.data.conformer_store import ConformerStore

pytestmark = pytest.mark.cli

app = typer.Typer()
app.command()(conformers)
runner = CliRunner()
FAST = ["--num-confs", "1", "--workers", "1", "--max-atoms", "13", "-q"]


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def _ok(*args):
    result = _run(*args)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def csv(tmp_path) -> Path:
    path = tmp_path / "mols.csv"
    pd.DataFrame(
        {
            "name": ["ethanol", "bad", "aspirin", "long", "blank"],
            "smiles": ["OCC", "C1CC", "CC(=O)Oc1ccccc1C(=O)O", "C" * 14, ""],
        }
    ).to_csv(path, index=False)
    return path


def test_csv_to_store(csv, tmp_path):
    out = tmp_path / "store"
    result = _ok(csv, "--out", out, *FAST)
    assert "conformers: 2 of 3 molecules done, 1 failed (1 too many heavy atoms)" in result.stdout
    assert "failures.csv" in result.stdout
    bad = pd.read_csv(out / "bad_rows.csv")
    assert bad["row"].tolist() == [1, 4]
    failures = pd.read_csv(out / "failures.csv")
    assert failures["reason"].tolist() == ["too many heavy atoms (14 > 13)"]
    store = ConformerStore(out)
    assert store.smiles == ["CCO", "CC(=O)Oc1ccccc1C(=O)O", "C" * 14]
    assert store.n_confs.tolist() == [1, 1, 0]

    # rerun: everything is resumed; other settings: a clear error; --no-resume rebuilds
    assert "2 of 3 molecules done" in _ok(csv, "--out", out, *FAST).stdout
    result = _run(csv, "--out", out, *FAST, "--seed", "7")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "seed=42 (now 7)" in " ".join(result.stderr.split())
    _ok(csv, "--out", out, *FAST, "--seed", "7", "--no-resume")
    assert ConformerStore(out).settings.seed == 7


def test_limit_and_user_errors(csv, tmp_path):
    out = tmp_path / "lim"
    assert "1 of 1 molecules done" in _ok(csv, "--out", out, *FAST, "--limit", "1").stdout
    result = _run(tmp_path / "missing.csv", "--out", out, *FAST)
    assert result.exit_code == 2 and "neither a file nor a known dataset" in result.stderr
    result = _run(csv, "--out", csv, *FAST)
    assert result.exit_code == 2 and "is a file" in result.stderr


def test_sdf_input(tmp_path):
    path = tmp_path / "in.sdf"
    writer = Chem.SDWriter(str(path))
    for s in ("CCO", "c1ccccc1N"):
        mol = Chem.AddHs(Chem.MolFromSmiles(s))
        AllChem.EmbedMolecule(mol, randomSeed=1)
        writer.write(mol)
    writer.close()
    out = tmp_path / "sdf_store"
    assert "2 of 2 molecules done" in _ok(path, "--out", out, "-q").stdout
    store = ConformerStore(out)
    assert store.source == "sdf" and store.smiles == ["CCO", "Nc1ccccc1"]
    assert (out / "bad_records.csv").is_file()


def test_qm9_input(shared_data, tmp_path):
    out = tmp_path / "qm9"
    args = ["qm9", "--out", out, "--data-dir", shared_data, "--limit", "20", "--workers", "1"]
    result = _ok(*args)
    assert "of 20 molecules done" in result.stdout
    store = ConformerStore(out)
    assert store.source == "qm9" and len(store) == 20
    assert json.loads((out / "manifest.json").read_text())["settings"]["limit"] == 20
    z, pos = store.get(int(np.flatnonzero(store.ok_mask)[0]))
    assert pos.shape == (1, len(z), 3)
