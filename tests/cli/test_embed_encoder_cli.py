"""`fewmol embed` from encoder sources: shipped checkpoints, pre-trained encoder dirs and the
encoders inside multitask / DTA model dirs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem

from cli_helpers import cli_ok, cli_user_error
from fewmol.chem.featurize import featurize_many, get_featurizer
from fewmol.data.collate import GraphSet
from fewmol.io.checkpoint import FORMAT, FORMAT_VERSION, save_tensors, write_json
from fewmol.io.modeldir import (
    encoder_hparams,
    encoder_source_kind,
    load_pretrained_encoder,
    save_encoder,
)
from fewmol.models.gin import GINEncoder
from fewmol.models.heads import global_pool

pytestmark = [pytest.mark.cli, pytest.mark.filterwarnings("ignore:.*treespec.*")]

DATA = Path(__file__).resolve().parents[1] / "data"
TINY = DATA / "tiny.csv"
INVALID = [43, 47, 51, 55]  # tiny.csv's bad SMILES and the empty one


def _encoder(featurizer: str = "hu2019", seed: int = 0) -> GINEncoder:
    torch.manual_seed(seed)
    enc = GINEncoder(**encoder_hparams(featurizer, num_layers=2, dim=16, dropout=0.0))
    # non-trivial batch-norm statistics, so eval-mode embeddings depend on them
    for m in enc.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return enc.eval()


def _direct(enc: GINEncoder, smiles: list[str], featurizer: str) -> np.ndarray:
    """Mean-pooled encoder output computed here, without the embed code path.

    SMILES are canonicalised first, as fewmol reads every input: the chirality-tag feature
    (CW / CCW) depends on the atoms' order, so stereocentres written in another order embed
    differently.
    """
    smiles = [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in smiles]
    spec = get_featurizer(featurizer)
    graphs = GraphSet.from_graphs(
        featurize_many(smiles, featurizer), len(spec.atom_dims), len(spec.bond_dims)
    )
    b = graphs.collate(np.arange(len(graphs)))
    with torch.no_grad():
        h = enc.eval()(b.x, b.edge_index, b.edge_attr)
        return global_pool(h, b.batch, b.num_graphs, "mean").numpy()


def _embeddings(out: Path) -> tuple[pd.DataFrame, np.ndarray]:
    df = pd.read_csv(out) if out.suffix == ".csv" else pd.read_parquet(out)
    return df, df[[c for c in df.columns if c.startswith("emb_")]].to_numpy()


def _valid_smiles(df: pd.DataFrame) -> list[str]:
    return df.loc[df["valid"], "smiles"].tolist()


def test_embed_from_the_shipped_checkpoint_equals_its_encoder(tmp_path) -> None:
    out = tmp_path / "emb.parquet"
    cli_ok(["embed", "graphmvp", TINY, "--out", out, "-q"])
    df, emb = _embeddings(out)
    assert len(df) == 76 and emb.shape[1] == 300
    assert df.index[~df["valid"]].tolist() == INVALID
    assert np.isnan(emb[INVALID]).all()
    enc, cfg = load_pretrained_encoder("graphmvp")
    assert cfg["featurizer"] == "ogb"
    want = _direct(enc, _valid_smiles(df), "ogb")
    np.testing.assert_allclose(emb[df["valid"].to_numpy()], want, atol=1e-5)
    assert np.std(want, axis=0).max() > 1e-3  # molecules differ, not one constant vector


def test_embed_from_an_unfinished_pretrain_dir_says_so(tmp_path) -> None:
    enc = _encoder()
    pre = save_encoder(
        tmp_path / "pre", enc, "hu2019", method="attrmask", epochs=5, epochs_done=2, complete=False
    )
    out = tmp_path / "emb.csv"
    result = cli_ok(["embed", pre, TINY, "--out", out, "-q"])
    assert "pre-training has not finished (epoch 2 of 5)" in " ".join(result.stderr.split())
    df, emb = _embeddings(out)
    np.testing.assert_allclose(
        emb[df["valid"].to_numpy()], _direct(enc, _valid_smiles(df), "hu2019"), atol=1e-5
    )


def test_strip_salts_cleans_the_input_of_an_encoder(tmp_path) -> None:
    pre = save_encoder(tmp_path / "pre", _encoder(), "hu2019", complete=True)
    csv = tmp_path / "salts.csv"
    pd.DataFrame({"smiles": ["Oc1ccccc1.Cl", "Oc1ccccc1", "CC(=O)[O-].[Na+]", "CC(=O)O"]}).to_csv(
        csv, index=False
    )
    plain, clean = tmp_path / "plain.csv", tmp_path / "clean.csv"
    cli_ok(["embed", pre, csv, "--out", plain, "-q"])
    cli_ok(["embed", pre, csv, "--out", clean, "-q", "--strip-salts", "--standardize"])
    _, p = _embeddings(plain)
    _, c = _embeddings(clean)
    assert not np.allclose(p[0], p[1])  # the counter-ion changes the mean-pooled embedding
    np.testing.assert_allclose(c[0], c[1], atol=1e-6)
    np.testing.assert_allclose(c[2], c[3], atol=1e-6)  # neutralised acetate = acetic acid


def _model_dir(path: Path, kind: str, prefix: str, enc: GINEncoder) -> Path:
    """A multitask / DTA-like model dir: config + weights with the encoder under ``prefix``."""
    path.mkdir()
    tensors = {f"{prefix}{k}": v for k, v in enc.state_dict().items()}
    tensors["head.weight"] = torch.zeros(3, 16)
    save_tensors(path / "model.safetensors", tensors)
    cfg = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind}
    cfg |= {"featurizer": "hu2019", "encoder": enc.hparams, "pooling": "mean"}
    write_json(path / "config.json", cfg)
    return path


@pytest.mark.parametrize(
    ("kind", "prefix"), [("multitask", "encoder."), ("dta_model", "drug_encoder.")]
)
def test_embed_reads_the_encoder_of_multitask_and_dta_dirs(tmp_path, kind, prefix) -> None:
    enc = _encoder(seed=3)
    model = _model_dir(tmp_path / "m", kind, prefix, enc)
    assert encoder_source_kind(model) == kind
    out = tmp_path / "emb.csv"
    cli_ok(["embed", model, TINY, "--out", out, "-q"])
    df, emb = _embeddings(out)
    np.testing.assert_allclose(
        emb[df["valid"].to_numpy()], _direct(enc, _valid_smiles(df), "hu2019"), atol=1e-5
    )


def test_clean_up_flags_on_a_finetuned_model_are_a_user_error(tmp_path) -> None:
    model = tmp_path / "ft"
    small = ["--num-layers", "2", "--hidden", "16", "--epochs", "1", "-q", "--split", "random"]
    cli_ok(["finetune", TINY, "--out", model, "--accelerator", "cpu", *small])
    assert encoder_source_kind(model) is None
    out = tmp_path / "emb.csv"
    cli_user_error(
        ["embed", model, TINY, "--out", out, "--strip-salts"],
        "clean-up flags apply to encoder sources only",
    )
    assert not out.exists()


def test_unknown_source_lists_the_shipped_checkpoints(tmp_path) -> None:
    cli_user_error(
        ["embed", "graphmvp-x", TINY, "--out", tmp_path / "e.csv"],
        "graphmvp-x not found",
        "graphmvp (= graphmvp-c-ogb)",
    )


def test_a_plain_dir_names_both_kinds_of_source(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    cli_user_error(
        ["embed", tmp_path, TINY, "--out", tmp_path / "e.csv"],
        "not a fewmol model dir",
        "fewmol finetune",
        "encoder.safetensors",
    )


@pytest.mark.parametrize("source", ["shipped", "dir"])
def test_predict_with_an_encoder_points_to_finetune_and_embed(tmp_path, source) -> None:
    enc = "graphmvp"
    if source == "dir":
        enc = str(save_encoder(tmp_path / "pre", _encoder(), "hu2019", complete=True))
    out = tmp_path / "p.csv"
    cli_user_error(
        ["predict", enc, TINY, "--out", out],
        "is a pre-trained encoder, with no task to predict",
        f"fewmol finetune DATA --init {enc}",
        f"fewmol embed {enc}",
    )
    assert not out.exists()
