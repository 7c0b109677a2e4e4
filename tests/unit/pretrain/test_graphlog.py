"""fewmol.pretrain.methods.graphlog: local alignment and hierarchical prototypes."""

from __future__ import annotations

import numpy as np
import torch

from fewmol.pretrain.masking import mask_atoms
from fewmol.pretrain.methods import METHODS, GraphLoG
from fewmol.pretrain.methods.graphlog import inter_nce, intra_nce


def test_intra_and_inter_nce_match_a_direct_computation() -> None:
    torch.manual_seed(0)
    h, hm = torch.randn(7, 4), torch.randn(7, 4)
    batch = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    masked = torch.tensor([1, 3, 6])
    loss, _ = intra_nce(h, hm, masked, batch, 2, 0.5)
    cos = torch.nn.functional.cosine_similarity
    ref = []
    for m in masked.tolist():
        same = (batch == batch[m]).nonzero().squeeze(1)
        s = torch.stack([cos(h[j], hm[m], dim=0) for j in same]) / 0.5
        ref.append(-(cos(h[m], hm[m], dim=0) / 0.5 - torch.logsumexp(s, 0)))
    assert torch.allclose(loss, torch.stack(ref).mean(), atol=1e-5)
    z, zm = torch.randn(5, 4), torch.randn(5, 4)
    loss, _ = inter_nce(z, zm, 0.2)
    sim = torch.stack([torch.stack([cos(z[i], zm[j], dim=0) for j in range(5)]) for i in range(5)])
    ref = (-torch.log_softmax(sim / 0.2, dim=0).diagonal()).mean()
    assert torch.allclose(loss, ref, atol=1e-5)


def test_masked_view_is_valid(bbbp_batch, assert_valid) -> None:
    m = mask_atoms(bbbp_batch, 0.3, torch.Generator().manual_seed(0))
    assert_valid(m.batch)
    counts = torch.bincount(bbbp_batch.batch).tolist()
    assert m.atom_idx.numel() == sum(min(int(n * 0.3 + 1), n) for n in counts)


def test_warmup_then_hierarchy_then_prototype_loss(bbbp_batch, tiny_encoder) -> None:
    enc = tiny_encoder()
    m = GraphLoG(dim=16, num_proto=10, hierarchy=3)
    assert METHODS["graphlog"] is GraphLoG
    opt = torch.optim.Adam([*enc.parameters(), *m.parameters()], lr=3e-3)
    losses = []
    for step in range(40):
        loss, logs = m.loss(enc, bbbp_batch, torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step < 10:
            assert "loss_proto" not in logs  # warm-up: no prototype term
        if step == 9:  # end of the warm-up epoch: the finest level was fitted online
            assert bool(m.active[0].any()) and not bool(m.active[1].any())
            m.epoch_end(enc)
            # every active prototype below the top has an active parent, every active
            # parent has a child
            for level in range(2):
                kids = m.active[level].nonzero().squeeze(1)
                parents = m.parent[level, kids]
                assert bool((parents >= 0).all()) and bool(m.active[level + 1, parents].all())
                assert set(parents.tolist()) == set(m.active[level + 1].nonzero()[:, 0].tolist())
    assert "loss_proto" in logs and logs["n_proto_0"] >= logs["n_proto_2"] >= 1
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses
    # prototype state is in the state dict (a checkpoint restores it exactly)
    again = GraphLoG(**m.hparams)
    again.load_state_dict(m.state_dict())
    assert again.prototypes_ready and torch.equal(again.proto, m.proto)
    assert torch.equal(again.parent, m.parent) and torch.equal(again.active, m.active)
