"""fewmol.pretrain.methods.graphcl: two augmented views, GraphCL's contrastive loss."""

from __future__ import annotations

import numpy as np
import torch

from fewmol.pretrain.augment import NUM_PAIRS
from fewmol.pretrain.methods import METHODS, GraphCL
from fewmol.pretrain.methods.graphcl import graphcl_loss


def test_loss_equals_graphcl_reference_formula() -> None:
    torch.manual_seed(0)
    z1, z2 = torch.randn(6, 8), torch.randn(6, 8)
    # GraphCL's loss_cl, written out as in its code
    sim = torch.einsum("ik,jk->ij", z1, z2) / torch.einsum(
        "i,j->ij", z1.norm(dim=1), z2.norm(dim=1)
    )
    sim = torch.exp(sim / 0.1)
    pos = sim[range(6), range(6)]
    ref = -torch.log(pos / (sim.sum(dim=1) - pos)).mean()
    assert torch.allclose(graphcl_loss(z1, z2, 0.1), ref, atol=1e-5)


def test_views_are_valid_graphs(bbbp_batch, small_batch, assert_valid) -> None:
    m = GraphCL(dim=16)
    for b in (bbbp_batch, small_batch()):
        for pair in range(NUM_PAIRS):
            pairs = torch.full((b.num_graphs,), pair)
            v1, v2 = m.views(b, pairs, torch.Generator().manual_seed(pair))
            assert_valid(v1)
            assert_valid(v2)
            assert v1.num_graphs == v2.num_graphs == b.num_graphs


def test_loss_decreases(bbbp_batch, tiny_encoder) -> None:
    enc = tiny_encoder()
    m = METHODS["graphcl"](dim=16)
    assert torch.allclose(m.aug_prob, torch.full((NUM_PAIRS,), 1 / NUM_PAIRS))
    opt = torch.optim.Adam([*enc.parameters(), *m.parameters()], lr=3e-3)
    losses = []
    for _ in range(30):
        loss, logs = m.loss(enc, bbbp_batch, torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 1.0, losses
    assert logs["acc"] > 0.5


def test_single_molecule_batch_is_a_zero_loss(small_batch, tiny_encoder) -> None:
    loss, _ = GraphCL(dim=16).loss(tiny_encoder(), small_batch(["CCO"]))
    assert loss.item() == 0.0
    loss.backward()
