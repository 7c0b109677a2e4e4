"""Every 2D method is registered the same way: config, module, hparams, data, resume."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from fewmol.chem.featurize import featurize_smiles
from fewmol.chem.motifs import motif_labels
from fewmol.data.collate import GraphSet
from fewmol.errors import InvalidInputError
from fewmol.pretrain.data import METHODS_2D, resolve_pretrain_data
from fewmol.pretrain.datamodule import PretrainDataModule
from fewmol.pretrain.methods import METHODS
from fewmol.pretrain.methods.contextual import build_context_vocab
from fewmol.pretrain.module import Pretrain2DModule
from fewmol.pretrain.run import (
    PretrainConfig,
    PretrainRun,
    build_method_2d,
    build_module,
    module_hparams,
    prepare_data,
)

TINY = Path(__file__).resolve().parents[2] / "data" / "tiny.csv"
NEW = ["edgepred", "infograph", "gpt-gnn", "graphlog", "g-contextual", "g-motif", "graphcl",
       "joao"]  # fmt: skip


@pytest.fixture(scope="module")
def data2d():
    """12 molecules of tiny.csv, 2D only."""
    return resolve_pretrain_data(str(TINY), "attrmask", max_molecules=12, workers=0, progress=False)


def test_all_methods_are_registered() -> None:
    assert set(NEW) <= set(METHODS_2D) and set(METHODS_2D) == set(METHODS)
    assert all(METHODS[m].name == m for m in METHODS)


@pytest.mark.parametrize("method", NEW)
def test_module_builds_trains_one_step_and_rebuilds_from_hparams(data2d, method) -> None:
    cfg = PretrainConfig(method=method, num_layers=2, dim=16, batch_size=6)
    cfg.validate()
    data = prepare_data(cfg, dataclasses.replace(data2d, info=dict(data2d.info)))
    module = build_module(cfg, data)
    assert isinstance(module, Pretrain2DModule) and module.method.name == method
    hp = module_hparams(module)
    json.dumps(hp)  # config.json-ready
    again = METHODS[method](**{k: v for k, v in hp["method_2d"].items() if k != "name"})
    assert {k: v.shape for k, v in again.state_dict().items()} == {
        k: v.shape for k, v in module.method.state_dict().items()
    }
    batch = next(iter(PretrainDataModule(data, 6, seed=0).train_dataloader()))
    if method == "g-motif":
        assert batch.y.shape == (6, 85) and data.info["motif_labels"]["n_labels"] == 85
    else:
        assert batch.y is None
    module.train()
    loss, parts = module.compute_loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and parts["loss"] == loss.detach()
    assert any(p.grad is not None for p in module.encoder.parameters())


def test_g_contextual_needs_the_data() -> None:
    with pytest.raises(ValueError, match="vocabulary"):
        build_module(PretrainConfig(method="g-contextual", num_layers=2, dim=16))


@pytest.mark.parametrize(
    "field, value, flag",
    [
        ("aug_strength", 1.0, "--aug-strength"),
        ("joao_gamma", -0.1, "--joao-gamma"),
        ("contextpred_logit_scale", 0.0, "--contextpred-logit-scale"),
    ],
)
def test_bad_settings_are_user_errors(field, value, flag) -> None:
    with pytest.raises(InvalidInputError, match=flag):
        PretrainConfig(method="joao", **{field: value}).validate()


def test_a_run_written_before_a_setting_existed_still_resumes(data2d, tmp_path) -> None:
    cfg = PretrainConfig(method="attrmask", num_layers=2, dim=16)
    run = PretrainRun(data2d, cfg, tmp_path)
    module = build_module(cfg, data2d)
    old = dataclasses.asdict(cfg)
    del old["aug_strength"], old["joao_gamma"]  # as written by an earlier fewmol
    del old["contextpred_logit_scale"]
    (tmp_path / "config.json").write_text(
        json.dumps({"pretraining": old, "encoder": module.encoder.hparams, "data": data2d.info})
    )
    run._check_resumable(module)  # no error: missing settings had their defaults
    old["attrmask_ratio"] = 0.3
    (tmp_path / "config.json").write_text(
        json.dumps({"pretraining": old, "encoder": module.encoder.hparams, "data": data2d.info})
    )
    with pytest.raises(InvalidInputError, match="attrmask_ratio"):
        run._check_resumable(module)


def test_2d_baselines_see_graphmvps_molecules(tmp_path) -> None:
    # the same DATA gives every method the same fixed-seed sample; on a conformer store the
    # 2D methods keep exactly the molecules GraphMVP trains on (those with conformers)
    d3 = resolve_pretrain_data(
        str(TINY), "graphmvp", max_molecules=10, num_confs=1, workers=0, progress=False
    )
    store = d3.info["store"]
    plain = resolve_pretrain_data(str(TINY), "joao", max_molecules=10, workers=0, progress=False)
    assert set(d3.smiles) <= set(plain.smiles) and len(plain) == 10
    for method in NEW:
        d2 = resolve_pretrain_data(store, method, max_molecules=None, workers=0, progress=False)
        assert d2.smiles == d3.smiles and not d2.is_3d
        assert d2.info["features_key"] == d3.info["features_key"]


@pytest.mark.parametrize("method", NEW)
def test_every_method_runs_with_the_ogb_featurizer(method, small_batch, tiny_encoder) -> None:
    smiles = ["CC(=O)O", "c1ccncc1C#N", "F/C=C/Cl", "C[C@H](N)C(=O)[O-]", "CCOC(C)=O"]
    b = small_batch(smiles, "ogb")
    kwargs: dict = {"dim": 16} if method == "g-motif" else {"featurizer": "ogb", "dim": 16}
    if method == "g-motif":
        b.y = torch.from_numpy(motif_labels(smiles).astype("float32"))
    if method == "g-contextual":
        graphs = GraphSet.from_graphs([featurize_smiles(s, "ogb") for s in smiles], 9, 3)
        kwargs["vocab"] = build_context_vocab(graphs, "ogb")
    loss, logs = METHODS[method](**kwargs).loss(
        tiny_encoder("ogb"), b, torch.Generator().manual_seed(0)
    )
    loss.backward()
    assert torch.isfinite(loss) and all(isinstance(v, float) for v in logs.values())


def test_graphmvp_c_passes_the_contextpred_logit_scale() -> None:
    cfg = PretrainConfig(method="graphmvp-c", num_layers=2, dim=16, contextpred_logit_scale=0.25)
    assert build_method_2d(cfg).logit_scale == 0.25
    assert (
        build_method_2d(PretrainConfig(method="contextpred", num_layers=2, dim=16)).logit_scale
        == 1.0
    )
