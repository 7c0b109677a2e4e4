"""fewmol.pretrain.methods.edgepred: link prediction with negative sampling."""

from __future__ import annotations

import numpy as np
import torch

from fewmol.pretrain.methods import METHODS, EdgePred
from fewmol.pretrain.methods.edgepred import negative_edges


def test_negatives_are_unbonded_distinct_pairs_of_one_molecule(bbbp_batch, small_batch) -> None:
    for b in (bbbp_batch, small_batch()):
        bonds = {tuple(e) for e in b.edge_index.T.tolist()}
        for seed in range(3):
            neg = negative_edges(b, torch.Generator().manual_seed(seed))
            pairs = [tuple(e) for e in neg.T.tolist()]
            assert neg.dtype == torch.long and neg.min() >= 0 and neg.max() < b.x.shape[0]
            assert len(set(pairs)) == len(pairs)  # no pair twice
            assert all(u != v and (u, v) not in bonds for u, v in pairs)
            assert torch.equal(b.batch[neg[0]], b.batch[neg[1]])
            # one per bond in each molecule with enough free pairs (pretrain-gnns' count)
            n_bonds = np.bincount(b.batch[b.edge_index[0][b.edge_index[0] < b.edge_index[1]]],
                                  minlength=b.num_graphs)  # fmt: skip
            n_neg = np.bincount(b.batch[neg[0]].numpy(), minlength=b.num_graphs)
            n_atoms = np.bincount(b.batch.numpy(), minlength=b.num_graphs)
            free = n_atoms * (n_atoms - 1) - 2 * n_bonds  # ordered unbonded pairs
            assert (n_neg <= n_bonds).all()
            big = free >= 4 * n_bonds  # plenty of room: 5 draws per wanted pair suffice
            assert (n_neg[big] == n_bonds[big]).sum() >= 0.9 * big.sum()


def test_loss_decreases_and_separates_bonds_from_non_bonds(bbbp_batch, tiny_encoder) -> None:
    enc = tiny_encoder()
    m = EdgePred(dim=16)
    assert METHODS["edgepred"] is EdgePred and m.hparams["neg_per_bond"] == 1
    opt = torch.optim.Adam(enc.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss, logs = m.loss(enc, bbbp_batch, torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses
    assert logs["acc"] > 0.75


def test_bondless_batch_gives_a_zero_loss_that_backpropagates(small_batch, tiny_encoder) -> None:
    enc = tiny_encoder()
    loss, logs = EdgePred(dim=16).loss(enc, small_batch(["[Na+].[Cl-]", "C"]))
    assert loss.item() == 0.0 and logs["n_pos"] == 0
    loss.backward()
