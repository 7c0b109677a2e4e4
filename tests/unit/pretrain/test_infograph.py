"""fewmol.pretrain.methods.infograph: node-vs-graph mutual information (GraphMVP's InfoGraph)."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from fewmol.models.heads import global_pool
from fewmol.pretrain.methods import METHODS, InfoGraph


def test_loss_is_bce_of_own_vs_next_summary(small_batch, tiny_encoder) -> None:
    b = small_batch()
    enc = tiny_encoder()
    m = InfoGraph(dim=16)
    loss, logs = m.loss(enc, b)
    # reference computation, written out: s = sigmoid(mean pool), D(h, s) = (s W) . h
    h = enc(b.x, b.edge_index, b.edge_attr)
    s = torch.sigmoid(global_pool(h, b.batch, b.num_graphs, "mean"))
    pos = (h * (s @ m.weight)[b.batch]).sum(1)
    shifted = s[(torch.arange(b.num_graphs) + 1) % b.num_graphs]
    neg = (h * (shifted @ m.weight)[b.batch]).sum(1)
    ref = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
    ref = ref + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))
    assert torch.allclose(loss, ref, atol=1e-6)
    assert logs["n_atoms"] == b.x.shape[0]


def test_loss_decreases(bbbp_batch, tiny_encoder) -> None:
    enc = tiny_encoder()
    m = METHODS["infograph"](dim=16)
    opt = torch.optim.Adam([*enc.parameters(), *m.parameters()], lr=3e-3)
    losses = []
    for _ in range(40):
        loss, logs = m.loss(enc, bbbp_batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.85 * np.mean(losses[:3]), losses
    assert logs["acc"] > 0.6


def test_single_molecule_batch_has_no_negative(small_batch, tiny_encoder) -> None:
    loss, _ = InfoGraph(dim=16).loss(tiny_encoder(), small_batch(["CCO"]))
    assert loss.item() == 0.0
    loss.backward()
