"""`fewmol predict` and `fewmol embed` through typer's CliRunner on tiny trained models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_helpers import cli_ok, cli_user_error, runner
from fewmol.cli import app

pytestmark = [pytest.mark.cli, pytest.mark.filterwarnings("ignore:.*treespec.*")]

DATA = Path(__file__).resolve().parents[1] / "data"
TINY = DATA / "tiny.csv"
TINY_REG = DATA / "tiny_regression.csv"
SMALL = ["--num-layers", "2", "--hidden", "32", "--batch-size", "16", "-q"]
SMALL += ["--accelerator", "cpu", "--split", "random", "--dropout", "0"]
TASKS = ["Acid (active=1)", "N-count > 0 [class]"]
INVALID = [43, 47, 51, 55]  # bad SMILES and the empty one; duplicates / unlabelled rows are fine


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("predict")


@pytest.fixture(scope="module")
def cls_model(tmp) -> Path:
    out = tmp / "cls"
    cli_ok(["finetune", TINY, "--out", out, "--epochs", "3", *SMALL])
    return out


@pytest.fixture(scope="module")
def reg_data(tmp) -> Path:
    """The regression fixture with logP + 10, so values in training units are far from 0."""
    df = pd.read_csv(TINY_REG, dtype=str, keep_default_na=False)
    col = "logP (Crippen)"
    num = pd.to_numeric(df[col], errors="coerce")
    df[col] = [f"{v + 10:.2f}" if np.isfinite(v) else s for v, s in zip(num, df[col])]
    path = tmp / "shifted.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def reg_model(tmp, reg_data) -> Path:
    out = tmp / "reg"
    cli_ok(["finetune", reg_data, "--out", out, "--epochs", "5", *SMALL])
    return out


@pytest.fixture(scope="module")
def seeds_model(tmp) -> Path:
    out = tmp / "seeds"
    cli_ok(["finetune", TINY, "--out", out, "--epochs", "2", "--seeds", "0,1", *SMALL])
    return out


def _predict(model: Path, data: Path, out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run predict; return the output read as numbers and as raw text."""
    cli_ok(["predict", model, data, "--out", out])
    return pd.read_csv(out), pd.read_csv(out, dtype=str, keep_default_na=False)


def test_predict_keeps_every_input_row_in_order(cls_model, tmp_path) -> None:
    df, text = _predict(cls_model, TINY, tmp_path / "p.csv")
    inp = pd.read_csv(TINY, dtype=str, keep_default_na=False)
    assert len(df) == len(inp) == 76
    assert df["row"].tolist() == list(range(76))
    assert text.columns[0] == "row"
    for col in inp.columns:  # every input column passes through unchanged
        assert text[col].tolist() == inp[col].tolist(), col
    assert [f"{t}_pred" for t in TASKS] == [c for c in df.columns if c.endswith("_pred")]


def test_predict_flags_invalid_rows(cls_model, tmp_path) -> None:
    df, text = _predict(cls_model, TINY, tmp_path / "p.csv")
    assert df.index[~df["valid"]].tolist() == INVALID
    assert (text.loc[INVALID, "error"].str.len() > 0).all()
    assert text.loc[43, "error"].startswith("invalid SMILES")
    assert text.loc[55, "error"].startswith("empty SMILES")
    assert (text.loc[df["valid"], "error"] == "").all()
    preds = df[[f"{t}_pred" for t in TASKS]]
    assert preds.loc[INVALID].isna().all().all()
    valid = preds[df["valid"]].to_numpy()
    assert np.isfinite(valid).all() and (valid >= 0).all() and (valid <= 1).all()


def test_predict_matches_training_predictions(cls_model, tmp_path) -> None:
    df, _ = _predict(cls_model, TINY, tmp_path / "p.csv")
    train = pd.read_csv(cls_model / "predictions.csv")
    for t in TASKS:
        np.testing.assert_allclose(
            df.loc[train["row"], f"{t}_pred"].to_numpy(), train[f"{t}_pred"], atol=1e-5
        )
    # row 59 is 'OCC', the same molecule as row 16 'CCO': canonicalised, same prediction
    np.testing.assert_allclose(
        df.loc[59, [f"{t}_pred" for t in TASKS]].to_numpy(float),
        df.loc[16, [f"{t}_pred" for t in TASKS]].to_numpy(float),
        atol=1e-6,
    )


def test_predict_regression_in_training_units(reg_model, reg_data, tmp_path) -> None:
    df, _ = _predict(reg_model, reg_data, tmp_path / "p.csv")
    name = "logP (Crippen)"
    assert len(df) == 56 and df["row"].tolist() == list(range(56))
    labels = pd.to_numeric(df[name], errors="coerce")
    pred = df[f"{name}_pred"]
    assert pred[~df["valid"]].isna().all()
    assert pred[df["valid"]].notna().all()
    assert labels.mean() > 10
    assert abs(pred[df["valid"]].mean() - labels.mean()) < labels.std(), pred.describe()
    train = pd.read_csv(reg_model / "predictions.csv")
    np.testing.assert_allclose(
        pred[train["row"]].to_numpy(), train[f"{name}_pred"], rtol=1e-5, atol=1e-5
    )


def test_predict_with_seeds_gives_mean_and_std(seeds_model, tmp_path) -> None:
    both, _ = _predict(seeds_model, TINY, tmp_path / "both.csv")
    one, _ = _predict(seeds_model / "seed0", TINY, tmp_path / "s0.csv")
    two, _ = _predict(seeds_model / "seed1", TINY, tmp_path / "s1.csv")
    assert len(both) == 76
    for t in TASKS:
        assert f"{t}_std" in both.columns and f"{t}_std" not in one.columns
        a, b = one[f"{t}_pred"], two[f"{t}_pred"]
        np.testing.assert_allclose(both[f"{t}_pred"], (a + b) / 2, atol=1e-6)
        np.testing.assert_allclose(both[f"{t}_std"], (a - b).abs() / 2, atol=1e-6)
        assert both.loc[INVALID, f"{t}_std"].isna().all()
        assert (both.loc[both["valid"], f"{t}_std"] > 0).any()


def test_embed_writes_one_row_per_input_row(cls_model, tmp_path) -> None:
    out = tmp_path / "emb.parquet"
    cli_ok(["embed", cls_model, TINY, "--out", out])
    df = pd.read_parquet(out)
    dim = json.loads((cls_model / "config.json").read_text())["encoder"]["dim"]
    assert dim == 32
    emb_cols = [f"emb_{i}" for i in range(dim)]
    assert [c for c in df.columns if c.startswith("emb_")] == emb_cols
    assert len(df) == 76 and df["row"].tolist() == list(range(76))
    inp = pd.read_csv(TINY, dtype=str, keep_default_na=False)
    assert df["smiles"].tolist() == inp["Canonical SMILES"].tolist()
    emb = df[emb_cols].to_numpy()
    assert df.index[~df["valid"]].tolist() == INVALID
    assert np.isnan(emb[INVALID]).all()
    assert np.isfinite(emb[df["valid"].to_numpy()]).all()
    np.testing.assert_allclose(emb[59], emb[16], atol=1e-6)
    assert not np.allclose(emb[0], emb[1])


def test_predict_on_a_plain_dir_exits_2(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    result = runner.invoke(app, ["predict", str(tmp_path), str(TINY), "--out", "p.csv"])
    cli_user_error(result, "is not a fewmol model dir", "fewmol finetune")


@pytest.mark.parametrize("command", ["predict", "embed"])
def test_tampered_weights_exit_2(cls_model, tmp_path, command) -> None:
    model = tmp_path / "model"
    shutil.copytree(cls_model, model)
    weights = model / "model.safetensors"
    weights.write_bytes(np.random.default_rng(0).bytes(weights.stat().st_size))
    out = tmp_path / ("out.csv" if command == "predict" else "out.parquet")
    result = runner.invoke(app, [command, str(model), str(TINY), "--out", str(out)])
    cli_user_error(result, "model.safetensors", "corrupted")
    assert not out.exists()


def _drop_featurizer(c: dict) -> None:
    del c["featurizer"]


def _no_layers(c: dict) -> None:
    c["encoder"]["num_layers"] = 0


def _text_width(c: dict) -> None:
    c["encoder"]["dim"] = "wide"


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (_drop_featurizer, ("config.json lacks 'featurizer'",)),
        (_no_layers, ("encoder config", "num_layers must be >= 1")),
        (_text_width, ("encoder config", "not one this fewmol can build")),
    ],
)
@pytest.mark.parametrize("command", ["predict", "embed"])
def test_a_hand_edited_config_exits_2(cls_model, tmp_path, command, edit, fragments) -> None:
    """A config.json edited into something unbuildable: a model-file error, no traceback."""
    model = tmp_path / "model"
    shutil.copytree(cls_model, model)
    cfg = json.loads((model / "config.json").read_text())
    edit(cfg)
    (model / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / ("out.csv" if command == "predict" else "out.parquet")
    result = runner.invoke(app, [command, str(model), str(TINY), "--out", str(out)])
    cli_user_error(result, *fragments)
    assert not out.exists()


def test_predict_missing_input_exits_2(cls_model, tmp_path) -> None:
    result = runner.invoke(
        app, ["predict", str(cls_model), str(tmp_path / "none.csv"), "--out", "p.csv"]
    )
    cli_user_error(result, "none.csv", "does not exist")


def test_known_labels_on_a_single_task_dir_exits_2(cls_model, tmp_path) -> None:
    out = tmp_path / "p.csv"
    result = runner.invoke(
        app, ["predict", str(cls_model), str(TINY), "--out", str(out), "--known-labels"]
    )
    cli_user_error(result, "--known-labels", "multi-task")
    assert not out.exists()


def test_explain_gives_atom_attributions_that_add_up(cls_model, tmp_path) -> None:
    out, images = tmp_path / "atoms.csv", tmp_path / "img"
    args = ["explain", cls_model, TINY, "--out", out, "--steps", "64", "--images", images]
    result = cli_ok(args)
    assert "explained 72 molecules x 2 task(s)" in " ".join(result.stdout.split())
    df = pd.read_csv(out)
    valid = df[df["valid"]]
    assert sorted(set(df.loc[~df["valid"], "row"])) == INVALID
    assert len(valid) == 2 * 72 and set(valid["task"]) == set(TASKS)
    n_atoms = valid["atom_attributions"].str.count(";") + 1
    from rdkit import Chem

    expected = [Chem.MolFromSmiles(s).GetNumAtoms() for s in valid["canonical_smiles"]]
    assert n_atoms.tolist() == expected  # one number per atom of the canonical SMILES
    sums = valid["atom_attributions"].map(lambda s: sum(map(float, s.split(";"))))
    gap = valid["logit"] - valid["baseline_logit"]
    np.testing.assert_allclose(sums, gap, atol=0.02 * gap.abs().max() + 1e-3)
    drawn = valid["image"].dropna()
    assert len(drawn) > 100 and all((images / name).stat().st_size > 1000 for name in drawn)
    one = tmp_path / "one.csv"
    cli_ok(["explain", cls_model, TINY, "--out", one, "--task", TASKS[1], "--steps", "4"])
    assert set(pd.read_csv(one).dropna(subset=["task"])["task"]) == {TASKS[1]}
    bad = runner.invoke(
        app, ["explain", str(cls_model), str(TINY), "--out", str(one), "--task", "x"]
    )
    cli_user_error(bad, "--task x", "not a task")
