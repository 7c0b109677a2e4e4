"""fewmol.pretrain.methods.attrmask: masked atom/bond type prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewmol.chem.featurize import FEATURIZERS, featurize_smiles
from fewmol.data.collate import GraphBatch, GraphSet
from fewmol.models.gin import GINEncoder
from fewmol.pretrain.masking import mask_atoms
from fewmol.pretrain.methods import METHODS, AttrMask, ContextPred

SMILES = ["CCO", "c1ccccc1C(=O)O", "[Na+].[Cl-]", "F/C=C/F", "C[C@H](N)C#N", "C"]


def _batch(smiles: list[str] = SMILES, featurizer: str = "hu2019") -> GraphBatch:
    spec = FEATURIZERS[featurizer]
    gs = GraphSet.from_graphs(
        [featurize_smiles(s, featurizer) for s in smiles], len(spec.atom_dims), len(spec.bond_dims)
    )
    return gs.collate(np.arange(len(smiles)))


def _bbbp_batch(n: int = 32) -> GraphBatch:
    from fewmol.chem.mol import try_canonical_smiles
    from fewmol.data.registry import load_frame
    from fewmol.data.store import featurize_to_graphset

    out: list[str] = []
    for s in load_frame("bbbp")["smiles"].tolist():
        c, _ = try_canonical_smiles(s)
        if c is not None and c not in out:
            out.append(c)
        if len(out) == n:
            break
    return featurize_to_graphset(out, "hu2019").collate(np.arange(n))


def _encoder(featurizer: str = "hu2019", num_layers: int = 2, dim: int = 32) -> GINEncoder:
    spec = FEATURIZERS[featurizer]
    return GINEncoder(
        spec.atom_dims, spec.bond_dims, spec.self_loop_bond, num_layers=num_layers, dim=dim
    )


def test_registry_and_hparams_round_trip() -> None:
    assert METHODS["attrmask"] is AttrMask and METHODS["contextpred"] is ContextPred
    m = AttrMask(dim=32, mask_edge=True)
    assert m.hparams == {"featurizer": "hu2019", "dim": 32, "mask_ratio": 0.15, "mask_edge": True}
    again = METHODS[m.name](**m.hparams)
    assert {k: v.shape for k, v in again.state_dict().items()} == {
        k: v.shape for k, v in m.state_dict().items()
    }
    # pretrain-gnns heads: Linear(emb_dim, 119) atoms, Linear(emb_dim, 4) bonds
    assert m.atom_head.out_features == 119 and m.bond_head.out_features == 4
    assert AttrMask(dim=32).bond_head is None
    ogb = AttrMask("ogb", dim=32, mask_edge=True)
    assert ogb.atom_head.out_features == FEATURIZERS["ogb"].mask_atom[0]
    with pytest.raises(ValueError, match="mask_ratio"):
        AttrMask(mask_ratio=1.5)


@pytest.mark.parametrize("featurizer", ["hu2019", "ogb"])
@pytest.mark.parametrize("mask_edge", [False, True])
def test_loss_and_logs(featurizer: str, mask_edge: bool) -> None:
    torch.manual_seed(0)
    b = _batch(featurizer=featurizer)
    x0 = b.x.clone()
    enc = _encoder(featurizer)
    m = AttrMask(featurizer, dim=32, mask_edge=mask_edge)
    loss, logs = m.loss(enc, b, torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert torch.equal(b.x, x0)
    assert 0.0 <= logs["acc_atom"] <= 1.0
    assert logs["n_masked_atoms"] == sum(min(int(n * 0.15 + 1), n) for n in [3, 9, 2, 4, 5, 1])
    assert ("acc_bond" in logs) == mask_edge
    assert all(isinstance(v, float) for v in logs.values())
    loss.backward()
    assert enc.atom_embedding.embeddings[0].weight.grad is not None


def test_bondless_batch_with_mask_edge_has_no_bond_term() -> None:
    m = AttrMask(dim=32, mask_edge=True)
    loss, logs = m.loss(_encoder(), _batch(["[Na+].[Cl-]", "[K+].[Br-]"]))
    assert torch.isfinite(loss) and "acc_bond" not in logs


@pytest.mark.parametrize("mask_edge", [False, True])
def test_loss_decreases_and_beats_majority_baseline_on_bbbp(mask_edge: bool) -> None:
    torch.manual_seed(0)
    b = _bbbp_batch(32)
    enc = _encoder()
    method = AttrMask(dim=32, mask_edge=mask_edge)
    opt = torch.optim.Adam([*enc.parameters(), *method.parameters()], lr=3e-3)
    # the same masked atoms every step, so the objective is fixed and must go down
    labels = mask_atoms(b, 0.15, torch.Generator().manual_seed(0)).atom_labels[:, 0]
    majority = torch.bincount(labels).max().item() / len(labels)
    losses, accs = [], []
    for _ in range(30):
        loss, logs = method.loss(enc, b, torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        accs.append(logs["acc_atom"])
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3]), losses
    assert accs[-1] > majority, (accs, majority)
    if mask_edge:
        assert logs["acc_bond"] > 0.5
