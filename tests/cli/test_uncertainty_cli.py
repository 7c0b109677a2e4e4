"""Issue 9 from the command line: ensembles, MC-dropout, calibration, applicability domain,
RF baseline, input hygiene, atom-order invariance and streaming (resumable) predict/embed."""

from __future__ import annotations

import json
import random
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rdkit import Chem
from typer.testing import CliRunner

import fewmol.finetune.predict as predict_mod
from fewmol.cli import app
from fewmol.data.tables import read_smiles
from fewmol.finetune.predict import embed_table, predict_file, predict_table

pytestmark = [pytest.mark.cli, pytest.mark.filterwarnings("ignore:.*treespec.*")]

DATA = Path(__file__).resolve().parents[1] / "data"
TINY = DATA / "tiny.csv"
TINY_REG = DATA / "tiny_regression.csv"
SMALL = ["--num-layers", "2", "--hidden", "32", "--batch-size", "16", "-q"]
SMALL += ["--accelerator", "cpu", "--split", "random", "--epochs", "3"]
REG = "logP (Crippen)"
TASKS = ["Acid (active=1)", "N-count > 0 [class]"]
CHIRAL = [
    "C[C@H](N)C(=O)O",
    "COc1ccc2cc([C@H](C)C(=O)O)ccc2c1",
    "C[C@@H]1CC[C@H](C(C)C)[C@@H](O)C1",
    "O=C(O)[C@@H]1CSC(=N1)c1nc2ccc(O)cc2s1",
    "F/C=C/[C@H](Cl)Br",
]
runner = CliRunner()


def _ok(args: list) -> None:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def _user_error(args: list, *fragments: str) -> None:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    err = " ".join(result.stderr.split())
    assert "error:" in err, err
    for f in fragments:
        assert f in err, (f, err)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("uq")


@pytest.fixture(scope="module")
def reg_ens(tmp) -> Path:
    out = tmp / "reg_ens"
    _ok(["finetune", TINY_REG, "--out", out, "--ensemble", "2", "--baseline", "rf", *SMALL])
    return out


@pytest.fixture(scope="module")
def reg_mc(tmp) -> Path:
    out = tmp / "reg_mc"
    _ok(["finetune", TINY_REG, "--out", out, "--mc-dropout", "4", "--dropout", "0.3", *SMALL])
    return out


@pytest.fixture(scope="module")
def cls_model(tmp) -> Path:
    out = tmp / "cls"
    args = ["--calibration", "isotonic", "--strip-salts", "--standardize", "--baseline", "rf"]
    _ok(["finetune", TINY, "--out", out, *args, *SMALL])
    return out


@pytest.fixture(scope="module")
def big_input(tmp) -> Path:
    """~600 rows (tiny.csv repeated, invalid rows included): several 256-row chunks."""
    df = pd.read_csv(TINY, dtype=str, keep_default_na=False)
    big = pd.concat([df] * 8, ignore_index=True)
    path = tmp / "big.csv"
    big.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------- ensembles + calibration


def test_ensemble_dir_holds_members_calibration_and_ad(reg_ens) -> None:
    names = {p.name for p in reg_ens.iterdir()}
    assert {"seed0", "seed1", "ensemble.json", "calibration.json", "split.json"} <= names
    assert {"applicability.json", "applicability.safetensors", "metrics.json"} <= names
    ens = json.loads((reg_ens / "ensemble.json").read_text())
    assert ens["members"] == ["seed0", "seed1"] and ens["coverage"] == 0.9
    # one split for all members: their valid molecules are held out of every member
    assert (reg_ens / "seed0" / "split.json").read_text() == (
        reg_ens / "seed1" / "split.json"
    ).read_text()
    cal = json.loads((reg_ens / "calibration.json").read_text())
    assert cal["uncertainty"] == "ensemble of 2"
    assert cal["tasks"][REG]["method"] == "normalized"
    metrics = json.loads((reg_ens / "metrics.json").read_text())
    assert metrics["kind"] == "ensemble" and metrics["n_members"] == 2
    assert 0 <= metrics["calibration"]["test"]["coverage"] <= 1
    base = metrics["baseline"]
    assert base["method"] == "rf" and base["test"]["rmse"] > 0 and "rmse" in base["gnn"]["test"]
    summary = json.loads((reg_ens / "summary.json").read_text())
    assert summary["ensemble"]["baseline"]["test"] == base["test"]
    # nothing pickled: only JSON, CSV and safetensors anywhere in the dir
    suffixes = {p.suffix for p in reg_ens.rglob("*") if p.is_file()}
    assert suffixes <= {".json", ".csv", ".safetensors"}, suffixes


def test_predict_gives_interval_spread_and_ad(reg_ens, tmp_path) -> None:
    out, members = tmp_path / "p.csv", tmp_path / "members.csv"
    _ok(["predict", reg_ens, TINY_REG, "--out", out, "--members-out", members, "-q"])
    df = pd.read_csv(out)
    valid = df["valid"].to_numpy()
    assert len(df) == 56 and df["row"].tolist() == list(range(56))
    for col in ("_pred", "_std", "_lower", "_upper"):
        assert df.loc[valid, REG + col].notna().all() and df.loc[~valid, REG + col].isna().all()
    assert (df[REG + "_lower"] <= df[REG + "_pred"])[valid].all()
    assert (df[REG + "_pred"] <= df[REG + "_upper"])[valid].all()
    assert (df.loc[valid, REG + "_std"] > 0).all()
    # training molecules: similarity 1 and (near) zero embedding distance
    train = pd.read_csv(reg_ens / "predictions.csv").query("split == 'train'")["row"]
    assert (df.loc[train, "ad_max_tanimoto"] == 1.0).all()
    assert (df.loc[train, "ad_nearest_distance"] < 1e-3).all()
    assert df.loc[train, "ad_in_domain"].astype(bool).all()
    mem = pd.read_csv(members)
    assert list(mem.columns) == ["row", f"{REG}_seed0", f"{REG}_seed1"]
    np.testing.assert_allclose(
        mem[[f"{REG}_seed0", f"{REG}_seed1"]].mean(axis=1), df[REG + "_pred"], atol=1e-9
    )


def test_classification_calibrated_probability(cls_model, tmp_path) -> None:
    cal = json.loads((cls_model / "calibration.json").read_text())
    assert cal["method"] == "isotonic"
    out = tmp_path / "p.csv"
    _ok(["predict", cls_model, TINY, "--out", out, "-q"])
    df = pd.read_csv(out)
    for t in TASKS:
        p = df.loc[df["valid"], f"{t}_prob_cal"]
        assert p.notna().all() and ((p >= 0) & (p <= 1)).all()
        assert f"{t}_std" not in df.columns  # one deterministic model: no spread column
    metrics = json.loads((cls_model / "metrics.json").read_text())
    assert "ece_calibrated" in metrics["calibration"]["valid"]
    pred = pd.read_csv(cls_model / "predictions.csv")
    assert all(f"{t}_rf_pred" in pred.columns for t in TASKS)
    assert metrics["baseline"]["test"]["n_tasks_scored"] >= 1


def test_far_molecule_is_out_of_domain(reg_ens, tmp_path) -> None:
    path = tmp_path / "far.csv"
    pd.DataFrame({"smiles": ["FC(F)(F)C(F)(F)C(F)(F)C(F)(F)C(F)(F)F", "[Xe]"]}).to_csv(
        path, index=False
    )
    _ok(["predict", reg_ens, path, "--out", tmp_path / "p.csv", "-q"])
    df = pd.read_csv(tmp_path / "p.csv")
    assert (df["ad_max_tanimoto"] < 0.2).all()
    assert not df["ad_in_domain"].astype(bool).any()


# ---------------------------------------------------------------------- hygiene, atom order


def test_hygiene_is_recorded_and_reapplied(cls_model, tmp_path) -> None:
    cfg = json.loads((cls_model / "config.json").read_text())
    assert cfg["hygiene"] == {"strip_salts": True, "standardize": True, "canonical_tautomer": False}
    path = tmp_path / "salts.csv"
    pd.DataFrame(
        {"smiles": ["[Na+].[O-]C(=O)c1ccccc1", "OC(=O)c1ccccc1", "C[NH3+].[Cl-]", "CN"]}
    ).to_csv(path, index=False)
    _ok(["predict", cls_model, path, "--out", tmp_path / "p.csv", "-q"])
    df = pd.read_csv(tmp_path / "p.csv")
    cols = [c for c in df.columns if c.endswith(("_pred", "_prob_cal")) or c.startswith("ad_")]
    pd.testing.assert_frame_equal(
        df.loc[[0, 2], cols].reset_index(drop=True), df.loc[[1, 3], cols].reset_index(drop=True)
    )


@pytest.mark.parametrize("model", ["reg_ens", "cls_model"])
def test_atom_order_never_changes_a_prediction(model, request, tmp_path) -> None:
    """Six files, each holding the chiral molecules written with other atom orders: every
    output column is bit-identical across the files (same molecule, same row)."""
    model_dir = request.getfixturevalue(model)
    rng = random.Random(0)
    mols = [Chem.MolFromSmiles(s) for s in CHIRAL]
    outputs, written = [], []
    for round_ in range(6):
        smiles = []
        for mol in mols:
            perm = list(range(mol.GetNumAtoms()))
            rng.shuffle(perm)
            smiles.append(Chem.MolToSmiles(Chem.RenumberAtoms(mol, perm), canonical=False))
        written.append(smiles)
        path = tmp_path / f"perm{round_}.csv"
        pd.DataFrame({"smiles": smiles}).to_csv(path, index=False)
        _ok(["predict", model_dir, path, "--out", tmp_path / f"p{round_}.csv", "-q"])
        outputs.append(pd.read_csv(tmp_path / f"p{round_}.csv").drop(columns="smiles"))
    for i in range(len(CHIRAL)):  # really different strings for every molecule
        assert len({w[i] for w in written}) > 1
    cols = [c for c in outputs[0].columns if c not in ("row", "valid", "error")]
    assert outputs[0]["valid"].all() and len(cols) >= 5
    for other in outputs[1:]:
        pd.testing.assert_frame_equal(other, outputs[0], check_exact=True)
    # stereo is kept: the enantiomer of alanine is another molecule with another embedding
    enant = tmp_path / "enantiomer.csv"
    pd.DataFrame({"smiles": ["C[C@@H](N)C(=O)O"]}).to_csv(enant, index=False)
    _ok(["predict", model_dir, enant, "--out", tmp_path / "e.csv", "-q"])
    e = pd.read_csv(tmp_path / "e.csv")
    assert e.loc[0, "ad_nearest_distance"] != outputs[0].loc[0, "ad_nearest_distance"]


# ---------------------------------------------------------------------- streaming


@pytest.mark.parametrize("model", ["reg_mc", "reg_ens"])
def test_streamed_predict_equals_in_memory(model, request, big_input, tmp_path) -> None:
    """Three chunks of 256 rows vs one table: byte-identical CSV, MC-dropout included."""
    model_dir = request.getfixturevalue(model)
    full = predict_table(model_dir, read_smiles(big_input))
    full.to_csv(tmp_path / "full.csv", index=False)
    out = tmp_path / "stream.csv"
    _ok(["predict", model_dir, big_input, "--out", out, "--chunk-size", "256", "-q"])
    assert out.read_text() == (tmp_path / "full.csv").read_text()
    assert not (tmp_path / "stream.csv.parts").exists()


def test_streamed_embed_equals_in_memory(cls_model, big_input, tmp_path) -> None:
    full = embed_table(cls_model, read_smiles(big_input))
    out = tmp_path / "emb.parquet"
    _ok(["embed", cls_model, big_input, "--out", out, "--chunk-size", "256", "-q"])
    pd.testing.assert_frame_equal(pd.read_parquet(out), full)


def test_interrupted_predict_resumes(reg_mc, reg_ens, big_input, tmp_path, monkeypatch) -> None:
    out = tmp_path / "p.csv"
    calls = {"n": 0}
    original = predict_mod.Predictor.predict

    def flaky(self, table, prepared=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed while predicting the second chunk
        return original(self, table, prepared)

    monkeypatch.setattr(predict_mod.Predictor, "predict", flaky)
    args = ["predict", reg_mc, big_input, "--out", out, "--chunk-size", "256", "-q"]
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 130 and not out.exists()
    manifest = json.loads((tmp_path / "p.csv.parts" / "manifest.json").read_text())
    assert manifest["parts"] == [[0, 256]]
    monkeypatch.setattr(predict_mod.Predictor, "predict", original)
    _user_error(args, "1 finished chunks", "--resume")
    other = ["predict", reg_ens, big_input, "--out", out, "--chunk-size", "256", "--resume"]
    _user_error(other, "different", "model")
    bf16 = [*args, "--resume", "--precision", "bf16-mixed"]
    _user_error(bf16, "different", "precision")  # chunks of two precisions never mix
    result = _ok([*args, "--resume"])
    assert "resuming at input row 256" in " ".join(result.stderr.split())
    full = predict_table(reg_mc, read_smiles(big_input))
    full.to_csv(tmp_path / "full.csv", index=False)
    assert out.read_text() == (tmp_path / "full.csv").read_text()
    assert not (tmp_path / "p.csv.parts").exists()


def test_streaming_memory_stays_bounded(reg_ens, tmp_path) -> None:
    """Peak Python/numpy memory for 4x the rows stays about the same (tracemalloc)."""
    base = pd.read_csv(TINY_REG, dtype=str, keep_default_na=False)

    def peak(n_rows: int) -> int:
        path = tmp_path / f"in{n_rows}.csv"
        reps = -(-n_rows // len(base))
        pd.concat([base] * reps, ignore_index=True).iloc[:n_rows].to_csv(path, index=False)
        tracemalloc.start()
        stats = predict_file(reg_ens, path, tmp_path / f"out{n_rows}.csv", chunk_rows=256)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert stats.rows == n_rows
        assert len(pd.read_csv(tmp_path / f"out{n_rows}.csv")) == n_rows
        return top

    small, large = peak(600), peak(2400)
    assert large < 1.3 * small, (small, large)


# ---------------------------------------------------------------------- user errors


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--ensemble", "1"], ["--ensemble needs at least 2"]),
        (["--ensemble", "2", "--seeds", "0,1"], ["either --ensemble"]),
        (["--coverage", "1.5"], ["--coverage must be a fraction"]),
        (["--calibration", "platt"], ["--calibration must be one of"]),
        (["--baseline", "xgb"], ["--baseline must be one of"]),
        (["--freeze-encoder"], ["--init"]),
        (["--unfreeze-after", "2"], ["--init"]),
        (["--mc-dropout", "5", "--dropout", "0"], ["--dropout > 0"]),
    ],
)
def test_bad_finetune_flags_exit_2(args: list[str], fragments: list[str], tmp_path) -> None:
    _user_error(["finetune", TINY, "--out", tmp_path / "m", *args, *SMALL], *fragments)
    assert not (tmp_path / "m").exists()  # nothing was read or written


def test_bad_predict_flags_exit_2(reg_ens, tmp_path) -> None:
    base = ["predict", reg_ens, TINY_REG, "--out", tmp_path / "p.csv"]
    _user_error([*base, "--chunk-size", "0"], "--chunk-size")
    _user_error([*base, "--members-out", tmp_path / "m.txt"], "--members-out must end in .csv")
    _user_error(["embed", reg_ens, TINY_REG, "--out", tmp_path / "e.txt"], ".parquet or .csv")
    _user_error([*base, "--precision", "fp8"], "--precision must be one of", "bf16-mixed")
    _user_error(
        ["embed", reg_ens, TINY_REG, "--out", tmp_path / "e.csv", "--precision", "64"],
        "--precision must be one of",
    )


@pytest.mark.parametrize("model", ["reg_mc", "reg_ens"])
def test_bf16_predict_is_close_to_float32(model, request, tmp_path) -> None:
    """bf16 autocast changes the outputs (it is applied) but only in the low digits."""
    path = request.getfixturevalue(model)
    outs = {}
    for prec in ("32-true", "bf16-mixed"):
        out = tmp_path / f"{prec}.csv"
        _ok(["predict", path, TINY_REG, "--out", out, "-q", "--precision", prec])
        outs[prec] = pd.read_csv(out)
    a, b = outs["32-true"], outs["bf16-mixed"]
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    pred = [c for c in a.columns if c.endswith("_pred")]
    assert not np.allclose(a[pred], b[pred], rtol=0, atol=1e-7, equal_nan=True)
    # logP values of about -2..8: bf16's 8-bit mantissa keeps them within a few hundredths
    np.testing.assert_allclose(a[pred], b[pred], rtol=0, atol=0.1)
    assert (a["valid"] == b["valid"]).all()


def test_bf16_embed_is_close_to_float32(cls_model, tmp_path) -> None:
    embs = {}
    for prec in ("32-true", "bf16-mixed"):
        out = tmp_path / f"{prec}.parquet"
        _ok(["embed", cls_model, TINY, "--out", out, "-q", "--precision", prec])
        embs[prec] = pd.read_parquet(out).filter(like="emb_").to_numpy()
    a, b = embs["32-true"], embs["bf16-mixed"]
    ok = ~np.isnan(a).any(1)
    assert ok.sum() > 10 and (np.isnan(b).any(1) == ~ok).all()
    assert not np.array_equal(a[ok], b[ok])
    rel = np.linalg.norm(a[ok] - b[ok], axis=1) / np.linalg.norm(a[ok], axis=1)
    assert rel.max() < 0.05, rel.max()
