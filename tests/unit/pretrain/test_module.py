"""Pre-training data (2D/3D alignment, conformer sampling, exclusions) and LightningModules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fewmol.data.collate import GraphBatch, GraphSet
from fewmol.pretrain.data import (
    Collate3D,
    ConformerSampler,
    atoms_match,
    resolve_pretrain_data,
)
from fewmol.pretrain.datamodule import PretrainDataModule
from fewmol.pretrain.masking import hop_distances, induced_subgraph
from fewmol.pretrain.module import GraphMVPModule, Pretrain2DModule, subgraph_keep
from fewmol.pretrain.run import PretrainConfig, build_module

TINY = Path(__file__).resolve().parents[2] / "data" / "tiny.csv"
# tiny models: GIN 2 x 32, SchNet 2 interactions x 16
TINY_MODEL = dict(
    num_layers=2, dim=32, schnet_hidden=16, schnet_filters=16, schnet_interactions=2, num_confs=2
)


@pytest.fixture(scope="module")
def data3d():
    """24 molecules of tiny.csv with 2 ETKDG conformers each (built once, cached)."""
    return resolve_pretrain_data(
        str(TINY), "graphmvp", max_molecules=24, num_confs=2, workers=0, progress=False
    )


def test_3d_collate_pairs_each_graph_with_its_own_conformer(data3d):
    assert len(data3d) == 24 and data3d.info["n_conformers"] == 48
    sampler = ConformerSampler(data3d.n_confs, seed=0)
    pairs = list(sampler)
    b = Collate3D(data3d)(pairs[:10])
    assert torch.equal(b.batch, b.graph.batch)  # same molecules, same atom order
    assert torch.equal(b.z, b.graph.x[:, 0] + 1)
    for row, (mol, conf) in enumerate(pairs[:10]):
        z, pos = data3d.store.get(int(data3d.store_index[mol]))
        atoms = b.batch == row
        assert data3d.smiles[mol] == data3d.store.smiles[data3d.store_index[mol]]
        assert torch.equal(b.z[atoms], torch.from_numpy(z))
        assert torch.equal(b.pos[atoms], torch.from_numpy(pos[conf]))
        assert int(b.conf[row]) == conf


def test_conformer_sampler_uses_every_conformer_and_is_resumable():
    n_confs = np.array([1, 2, 3, 5])
    s = ConformerSampler(n_confs, seed=3)
    seen = {m: set() for m in range(4)}
    for epoch in range(5):
        s.set_epoch(epoch)
        items = list(s)
        assert sorted(m for m, _ in items) == [0, 1, 2, 3]  # each molecule once per epoch
        for m, c in items:
            seen[m].add(c)
    assert all(seen[m] == set(range(n_confs[m])) for m in range(4))
    resumed = ConformerSampler(n_confs, seed=3, epoch_offset=2)
    s.set_epoch(2)
    assert list(resumed) == list(s)
    every = ConformerSampler(n_confs, seed=3, mode="all")
    assert sorted(every) == [(m, c) for m in range(4) for c in range(n_confs[m])]


@pytest.mark.parametrize("mode", ["cycle", "all"])
def test_samplers_resumed_mid_epoch_continue_the_same_order(mode):
    from fewmol.data.loaders import EpochSeededSampler

    n_confs = np.array([1, 2, 3, 5, 1, 2])
    full = ConformerSampler(n_confs, seed=3, mode=mode)
    full.set_epoch(4)
    part = ConformerSampler(n_confs, seed=3, epoch_offset=4, mode=mode, skip=4)
    assert list(part) == list(full)[4:] and len(part) == len(full) - 4
    assert len(ConformerSampler(n_confs, seed=3, mode=mode, skip=10**6)) == 0
    flat = EpochSeededSampler(9, seed=1)
    flat.set_epoch(2)
    part2 = EpochSeededSampler(9, seed=1, epoch_offset=2, skip=5)
    assert list(part2) == list(flat)[5:] and len(part2) == 4


def test_molecules_without_conformers_are_excluded_and_counted(tmp_path):
    csv = tmp_path / "m.csv"
    smiles = ["CCO", "c1ccccc1O", "C" * 101, "CC(=O)O"]
    pd.DataFrame({"smiles": smiles}).to_csv(csv, index=False)
    d = resolve_pretrain_data(str(csv), "graphmvp", num_confs=1, workers=0, progress=False)
    assert d.smiles == ["CCO", "Oc1ccccc1", "CC(=O)O"]
    assert d.info["n_excluded"] == 1
    assert d.info["excluded_reasons"] == {"too many heavy atoms": 1}
    assert d.excluded["index"].tolist() == [2]
    assert d.store.smiles[2] == "C" * 101
    # a 2D method on the same SMILES keeps every molecule
    assert len(resolve_pretrain_data(str(csv), "attrmask", workers=0)) == 4


def test_atoms_match_catches_misaligned_molecules(data3d):
    assert atoms_match(data3d.graphs, data3d.store, data3d.store_index).all()
    shifted = np.roll(data3d.store_index, 1)
    assert not atoms_match(data3d.graphs, data3d.store, shifted).all()


def _chain_and_salt() -> GraphBatch:
    """A 6-atom chain and a 3-atom salt (two fragments), as one batch."""
    chain = np.array([[0, 1, 1, 2, 2, 3, 3, 4, 4, 5], [1, 0, 2, 1, 3, 2, 4, 3, 5, 4]])
    salt = np.array([[0, 1], [1, 0]])
    gs = GraphSet(
        x=np.zeros((9, 2), np.int64),
        edge_index=np.concatenate([chain, salt], axis=1),
        edge_attr=np.zeros((12, 2), np.int64),
        atom_ptr=np.array([0, 6, 9]),
        edge_ptr=np.array([0, 10, 12]),
    )
    return gs.collate([0, 1])


def test_subgraph_keep_grows_a_connected_region():
    batch = _chain_and_salt()
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        keep = subgraph_keep(batch, 0.3, gen)
        # int(n * 0.7) + 1 atoms per graph: 5 of 6, 3 of 3
        assert torch.bincount(batch.batch[keep]).tolist() == [5, 3]
        sub = induced_subgraph(batch, keep).batch
        first = torch.tensor([0])
        chain_atoms = int((sub.batch == 0).sum())
        assert (hop_distances(sub.edge_index, sub.x.shape[0], first, 9)[:chain_atoms] >= 0).all()
    a = subgraph_keep(batch, 0.3, torch.Generator().manual_seed(1))
    b = subgraph_keep(batch, 0.3, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def _epoch_losses(module, data, epochs: int, batch_size: int = 8) -> list[float]:
    """Mean training loss per epoch of a plain loop (no Trainer)."""
    loader = PretrainDataModule(data, batch_size, seed=0).train_dataloader()
    opt = module.configure_optimizers()
    module.train()
    out = []
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        module.generator.manual_seed(epoch)
        losses = []
        for batch in loader:
            loss, parts = module.compute_loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            assert set(parts) >= {"loss", "contrastive", "generative", "contrastive_acc"}
            losses.append(float(loss.detach()))
        out.append(float(np.mean(losses)))
    return out


def test_graphmvp_loss_decreases(data3d):
    torch.manual_seed(0)
    module = build_module(PretrainConfig(method="graphmvp", **TINY_MODEL))
    assert isinstance(module, GraphMVPModule)
    losses = _epoch_losses(module, data3d, epochs=6)
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0], losses


def test_graphmvp_learning_rates_follow_the_reference():
    module = build_module(PretrainConfig(method="graphmvp-c", lr=1e-3, **TINY_MODEL))
    groups = module.configure_optimizers().param_groups
    lrs = [g["lr"] for g in groups]
    assert lrs == pytest.approx([1e-3, 1e-4, 1e-3, 1e-4, 1e-3])  # GIN, SchNet, 2D->3D, 3D->2D, CP
    n_params = sum(p.numel() for g in groups for p in g["params"])
    assert n_params == sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("method", ["attrmask", "contextpred", "graphmvp-g"])
def test_modules_are_deterministic_given_the_generator(data3d, method):
    losses = []
    for _ in range(2):
        torch.manual_seed(0)
        module = build_module(PretrainConfig(method=method, **TINY_MODEL))
        use_3d = isinstance(module, GraphMVPModule)
        loader = PretrainDataModule(data3d, 12, seed=0, use_3d=use_3d).train_dataloader()
        module.generator.manual_seed(5)
        module.train()
        loss, parts = module.compute_loss(next(iter(loader)))
        assert torch.isfinite(loss) and "loss" in parts
        losses.append(float(loss.detach()))
    assert losses[0] == losses[1]
    if method != "graphmvp-g":
        assert isinstance(module, Pretrain2DModule)
        assert any(k.startswith(method + "_") for k in parts)


def test_subgraph_masking_cuts_both_views_and_all_conformers_epoch(data3d):
    cfg = PretrainConfig(method="graphmvp", mask_mode="subgraph", mask_ratio=0.3, **TINY_MODEL)
    module = build_module(cfg)
    dm = PretrainDataModule(data3d, 12, seed=0, conf_sampling="all")
    loader = dm.train_dataloader()
    assert len(loader) == 4  # 24 molecules x 2 conformers, every pair once per epoch
    batch = next(iter(loader))
    module.train()
    view2d, graph2d, b3 = module.views(batch)
    assert view2d is graph2d and b3.z.shape[0] == view2d.x.shape[0] < batch.z.shape[0]
    assert torch.equal(b3.z, view2d.x[:, 0] + 1) and torch.equal(b3.batch, view2d.batch)
    loss, _ = module.compute_loss(batch)
    assert torch.isfinite(loss)
    module.eval()  # no masking outside training
    assert module.views(batch)[0] is batch.graph
