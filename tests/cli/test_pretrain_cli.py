"""`fewmol pretrain` through typer's CliRunner: every method, outputs, user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fewmol.cli import app
from fewmol.pretrain.data import PRETRAIN_METHODS

pytestmark = [pytest.mark.cli, pytest.mark.filterwarnings("ignore:.*treespec.*")]

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.csv"
runner = CliRunner()


# the 2D baselines of issue 7 get a shorter smoke run below (1 epoch, 20 molecules)
NEW_2D = ("edgepred", "infograph", "gpt-gnn", "graphlog", "g-contextual", "g-motif", "graphcl",
          "joao")  # fmt: skip


@pytest.mark.parametrize("method", [m for m in PRETRAIN_METHODS if m not in NEW_2D])
def test_each_method_writes_an_encoder_dir_that_finetune_loads(tmp_path, method, run_pretrain):
    pre = tmp_path / "pre"
    result = run_pretrain("--method", method, "--data", TINY, "--epochs", "2", "--out", pre)
    assert result.exit_code == 0, result.output
    assert f"pre-trained {method}: 2 epochs on 24 molecules" in result.stdout
    assert "molecules/s" in result.stdout
    for name in ("config.json", "encoder.safetensors", "pretrain_log.csv", "loss_curve.png"):
        assert (pre / name).is_file(), name
    assert (pre / "checkpoints" / "last.safetensors").is_file()
    log = pd.read_csv(pre / "pretrain_log.csv")
    assert log["epoch"].tolist() == [1, 2]
    assert {"loss", "molecules", "time_s", "mol_per_s"} <= set(log.columns)
    cfg = json.loads((pre / "config.json").read_text())
    assert cfg["kind"] == "encoder" and cfg["method"] == method and cfg["complete"]
    assert cfg["pretraining"]["mask_ratio"] == 0.15 and "git_commit" in cfg
    assert cfg["data"]["n_molecules"] == 24 and "hardware" in cfg
    if method.startswith("graphmvp"):
        assert cfg["data"]["n_conformers"] == 48
        assert cfg["modules"]["encoder_3d"]["out_channels"] == 32
        assert {"contrastive", "generative"} <= set(log.columns)

    ft = tmp_path / "ft"
    args = ["finetune", str(TINY), "--init", str(pre), "--epochs", "1", "--num-layers", "2"]
    args += ["--hidden", "32", "--accelerator", "cpu", "-q", "--out", str(ft)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((ft / "config.json").read_text())["init_from"] == str(pre)


def _finetune_from(pre: Path, out: Path):
    args = ["finetune", str(TINY), "--init", str(pre), "--epochs", "1", "--accelerator", "cpu"]
    return runner.invoke(app, [*args, "-q", "--out", str(out)])


@pytest.mark.parametrize("method", NEW_2D)
def test_each_2d_baseline_pretrains_and_finetune_loads_it(tmp_path, method):
    pre = tmp_path / "pre"
    result = runner.invoke(
        app, ["pretrain", "--method", method, "--data", str(TINY), "--max-molecules", "20",
              "--epochs", "1", "--batch-size", "8", "--num-layers", "2", "--hidden", "16",
              "--workers", "0", "--accelerator", "cpu", "-q", "--out", str(pre)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"pre-trained {method}: 1 epoch on 20 molecules" in result.stdout
    cfg = json.loads((pre / "config.json").read_text())
    assert cfg["method"] == method and cfg["complete"] and cfg["data"]["n_molecules"] == 20
    assert cfg["modules"]["method_2d"]["name"] == method
    assert "conformers_per_molecule" not in cfg["data"]  # 2D only: no conformers generated
    if method == "g-contextual":  # the vocabulary is kept in the run's config
        vocab = cfg["modules"]["method_2d"]["vocab"]
        assert vocab[0] == "<other>" and "C_C-SINGLE1" in vocab
    if method == "g-motif":
        assert cfg["data"]["motif_labels"]["n_labels"] == 85
    if method in ("graphcl", "joao"):
        assert cfg["pretraining"]["aug_strength"] == 0.2
    log = pd.read_csv(pre / "pretrain_log.csv")
    assert log["epoch"].tolist() == [1] and log["loss"].notna().all()
    assert (pre / "encoder.safetensors").is_file()
    result = _finetune_from(pre, tmp_path / "ft")
    assert result.exit_code == 0, result.output
    ft_cfg = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert ft_cfg["init_from"] == str(pre) and ft_cfg["encoder"]["dim"] == 16


def test_excluded_molecules_are_reported(tmp_path):
    csv = tmp_path / "m.csv"
    pd.DataFrame({"smiles": ["CCO", "c1ccccc1O", "C" * 101, "CC(=O)O"]}).to_csv(csv, index=False)
    out = tmp_path / "pre"
    result = runner.invoke(
        app, ["pretrain", "--data", str(csv), "--num-confs", "1", "--workers", "0", "--epochs",
              "1", "--batch-size", "4", "--num-layers", "2", "--hidden", "16",
              "--schnet-hidden", "8", "--schnet-interactions", "1", "-q", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "data: 3 molecules" in result.stderr
    assert "1 excluded (1 too many heavy atoms)" in result.stderr
    assert pd.read_csv(out / "excluded.csv")["index"].tolist() == [2]


def test_user_errors_exit_2(tmp_path, run_pretrain):
    result = run_pretrain("--method", "graphcl2", "--data", TINY, "--out", tmp_path / "a")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "graphmvp, graphmvp-g, graphmvp-c, attrmask, contextpred" in result.stderr
    result = run_pretrain("--data", tmp_path / "missing.csv", "--out", tmp_path / "b")
    assert result.exit_code == 2 and "neither a file" in result.stderr
    result = run_pretrain("--contrastive", "cosine", "--out", tmp_path / "c")
    assert result.exit_code == 2 and "ebm_nce, infonce" in result.stderr
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("")
    result = run_pretrain("--method", "attrmask", "--data", TINY, "--out", tmp_path / "d")
    assert result.exit_code == 2 and "--resume" in result.stderr
    result = run_pretrain("--method", "attrmask", "--data", tmp_path, "--out", tmp_path / "e")
    assert result.exit_code == 2 and "not a conformer store" in result.stderr
    result = run_pretrain(
        "--method", "joao", "--aug-strength", "1.5", "--data", TINY, "--out", tmp_path / "f"
    )
    assert result.exit_code == 2 and "--aug-strength" in result.stderr
    result = run_pretrain(
        "--method", "graphmvp-c", "--contextpred-logit-scale", "-1", "--out", tmp_path / "g"
    )  # fmt: skip
    assert result.exit_code == 2 and "--contextpred-logit-scale must be > 0" in result.stderr


def test_featurizer_defaults_to_ogb_and_a_resumed_run_keeps_its_own(tmp_path, run_pretrain):
    fresh = tmp_path / "fresh"
    result = run_pretrain("--method", "attrmask", "--data", TINY, "--epochs", "1", "--out", fresh)
    assert result.exit_code == 0, result.output
    assert "note: featuriser ogb" in result.stderr
    assert json.loads((fresh / "config.json").read_text())["featurizer"] == "ogb"

    old = tmp_path / "old"  # a hu2019 run from before the default changed, resumed without
    args = ["--method", "attrmask", "--data", TINY, "--out", old]  # naming a featuriser
    assert run_pretrain(*args, "--featurizer", "hu2019", "--epochs", "1").exit_code == 0
    result = run_pretrain(*args, "--epochs", "2", "--resume")
    assert result.exit_code == 0, result.output
    cfg = json.loads((old / "config.json").read_text())
    assert cfg["featurizer"] == "hu2019" and cfg["epochs_done"] == 2
    assert "note: featuriser" not in result.stderr

    # the last --featurizer wins (benchmarks/run_pretrain_rows.sh relies on it)
    last = tmp_path / "last"
    result = run_pretrain(*args[:-1], last, "--featurizer", "hu2019", "--featurizer", "ogb",
                          "--epochs", "1")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((last / "config.json").read_text())["featurizer"] == "ogb"
