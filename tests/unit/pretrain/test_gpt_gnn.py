"""fewmol.pretrain.methods.gpt_gnn: attribute and edge generation in a BFS order."""

from __future__ import annotations

import numpy as np
import torch

from fewmol.pretrain.masking import bfs_rank, hop_distances
from fewmol.pretrain.methods import GPTGNN, METHODS
from fewmol.pretrain.methods.gpt_gnn import generation_step


def test_bfs_rank_is_a_per_graph_order_whose_prefixes_are_connected(bbbp_batch) -> None:
    b = bbbp_batch
    rank = bfs_rank(b, torch.Generator().manual_seed(0))
    src, dst = b.edge_index
    for g in range(b.num_graphs):
        atoms = (b.batch == g).nonzero().squeeze(1)
        assert sorted(rank[atoms].tolist()) == list(range(atoms.numel()))
    # every atom of the root's fragment but the root has a neighbour earlier in the order,
    # and the root's fragment comes first (other fragments of a salt follow)
    earlier = torch.zeros_like(rank, dtype=torch.bool)
    earlier[dst[rank[src] < rank[dst]]] = True
    roots = (rank == 0).nonzero().squeeze(1)
    reach = hop_distances(b.edge_index, b.x.shape[0], roots, b.x.shape[0]) >= 0
    n_salts = 0
    for g in range(b.num_graphs):
        atoms = (b.batch == g).nonzero().squeeze(1)
        own = atoms[reach[atoms]]
        assert bool((earlier[own] | (rank[own] == 0)).all()), g
        assert sorted(rank[own].tolist()) == list(range(own.numel()))
        n_salts += int(own.numel() < atoms.numel())
    assert 0 < n_salts < b.num_graphs  # both cases were checked


def test_generation_step_is_valid(small_batch, bbbp_batch, assert_valid) -> None:
    for b in (small_batch(), bbbp_batch):
        counts = torch.bincount(b.batch, minlength=b.num_graphs)
        for seed in range(4):
            step = generation_step(b, torch.Generator().manual_seed(seed))
            sub = step.prefix.batch
            assert_valid(sub)
            assert step.prefix.graph_idx.tolist() == (counts >= 2).nonzero().squeeze(1).tolist()
            sizes = torch.bincount(sub.batch, minlength=sub.num_graphs)
            assert bool((sizes >= 1).all() and (sizes <= counts[step.prefix.graph_idx] - 1).all())
            # the next atom belongs to the molecule and is not in its prefix
            assert torch.equal(b.batch[step.next_atom], step.prefix.graph_idx)
            assert not bool(torch.isin(step.next_atom, step.prefix.atom_idx).any())
            # bonded flags: exactly the prefix atoms sharing a bond with the next atom
            bonds = {tuple(e) for e in b.edge_index.T.tolist()}
            nxt = step.next_atom[sub.batch]
            expect = [(int(a), int(v)) in bonds for a, v in zip(step.prefix.atom_idx, nxt)]
            assert step.bonded.tolist() == expect


def test_loss_decreases(bbbp_batch, tiny_encoder) -> None:
    enc = tiny_encoder()
    m = GPTGNN(dim=16)
    assert METHODS["gpt-gnn"] is GPTGNN and m.attr_head.out_features == 119
    opt = torch.optim.Adam([*enc.parameters(), *m.parameters()], lr=3e-3)
    losses = []
    for _ in range(30):
        loss, logs = m.loss(enc, bbbp_batch, torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3]), losses
    assert {"loss_attr", "loss_edge", "acc_attr", "acc_edge"} <= set(logs)


def test_attribute_only_variant_and_single_atoms(small_batch, tiny_encoder) -> None:
    m = GPTGNN(dim=16, edge_weight=0.0)  # GraphMVP's version
    assert m.edge_query is None
    loss, logs = m.loss(tiny_encoder(), small_batch(), torch.Generator().manual_seed(0))
    assert "loss_edge" not in logs and torch.isfinite(loss)
    loss, logs = GPTGNN(dim=16).loss(tiny_encoder(), small_batch(["C", "[Na+]"]))
    assert logs["n_generated"] == 0 and loss.item() == 0.0
    loss.backward()
