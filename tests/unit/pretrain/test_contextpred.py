"""fewmol.pretrain.methods.contextpred: batched substructure/context extraction and the loss."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch

from fewmol.chem.featurize import FEATURIZERS, featurize_smiles
from fewmol.data.collate import GraphBatch, GraphSet
from fewmol.models.gin import GINEncoder
from fewmol.pretrain.masking import sample_per_graph
from fewmol.pretrain.methods import METHODS, ContextPred
from fewmol.pretrain.methods.contextpred import extract_substructure_context

HU = FEATURIZERS["hu2019"]
SMILES = [
    "CCCCCCCCCCCCCCCC(=O)OC1CCC(N)CC1",
    "CCO",  # too small for any context at K = 5
    "O=C(O)c1ccccc1OC(C)=O",
    "[Na+].[O-]C(=O)CCCCCCCCC",  # two fragments
    "CN1CCC[C@H]1c1cccnc1",
    "CC(C)Cc1ccc(cc1)[C@@H](C)C(=O)O",
    "C",
    "OCC1OC(OC2C(O)C(O)C(O)OC2CO)C(O)C(O)C1O",
    "c1ccc2c(c1)ccc1ccccc12",
]


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


def _encoder(num_layers: int = 2, dim: int = 32) -> GINEncoder:
    return GINEncoder(HU.atom_dims, HU.bond_dims, HU.self_loop_bond, num_layers=num_layers, dim=dim)


def _bfs(adj: dict[int, list[int]], source: int) -> dict[int, int]:
    """Plain-Python BFS hop counts from ``source``."""
    dist = {source: 0}
    q = deque([source])
    while q:
        u = q.popleft()
        for v in adj[u]:
            if v not in dist:
                dist[v] = dist[u] + 1
                q.append(v)
    return dist


def _edges_between(b: GraphBatch, atoms: set[int]) -> set[tuple[int, int, tuple[int, ...]]]:
    """Directed edges of ``b`` with both ends in ``atoms``, with their features."""
    return {
        (u, v, tuple(a))
        for (u, v), a in zip(b.edge_index.T.tolist(), b.edge_attr.tolist())
        if u in atoms and v in atoms
    }


def _sub_edges(sub: GraphBatch, atom_idx: torch.Tensor) -> set[tuple[int, int, tuple[int, ...]]]:
    """Edges of a sub-batch mapped back to input atom ids."""
    old = atom_idx.tolist()
    return {
        (old[u], old[v], tuple(a))
        for (u, v), a in zip(sub.edge_index.T.tolist(), sub.edge_attr.tolist())
    }


@pytest.mark.parametrize(("k", "r1", "r2"), [(5, 4, 7), (2, 1, 4), (3, 0, 2), (4, 1, 3)])
@pytest.mark.parametrize("seed", [0, 1])
def test_extraction_matches_bruteforce_bfs(k: int, r1: int, r2: int, seed: int) -> None:
    b = _batch()
    centers = sample_per_graph(b.batch, b.num_graphs, 1, torch.Generator().manual_seed(seed))
    pairs = extract_substructure_context(b, centers, k, r1, r2)
    adj: dict[int, list[int]] = {i: [] for i in range(b.x.shape[0])}
    for u, v in b.edge_index.T.tolist():
        adj[u].append(v)

    want_graphs, want_sub, want_ctx, want_anchor, want_center = [], set(), set(), set(), []
    for c in centers.tolist():
        d = _bfs(adj, c)
        sub = {v for v, h in d.items() if h <= k}
        ctx = {v for v, h in d.items() if r1 < h <= r2}
        if sub & ctx:  # pretrain-gnns drops graphs without a context
            want_graphs.append(int(b.batch[c]))
            want_sub |= sub
            want_ctx |= ctx
            want_anchor |= sub & ctx
            want_center.append(c)

    assert pairs.graph_idx.tolist() == want_graphs
    assert pairs.num_skipped == b.num_graphs - len(want_graphs)
    assert set(pairs.substruct_atom_idx.tolist()) == want_sub
    assert set(pairs.context_atom_idx.tolist()) == want_ctx
    anchors = pairs.context_atom_idx[pairs.anchor]
    assert set(anchors.tolist()) == want_anchor
    assert pairs.substruct_atom_idx[pairs.center_idx].tolist() == want_center
    # induced subgraphs: exactly the original edges between kept atoms, same features
    assert _sub_edges(pairs.substruct, pairs.substruct_atom_idx) == _edges_between(b, want_sub)
    assert _sub_edges(pairs.context, pairs.context_atom_idx) == _edges_between(b, want_ctx)
    for part, idx in (
        (pairs.substruct, pairs.substruct_atom_idx),
        (pairs.context, pairs.context_atom_idx),
    ):
        assert torch.equal(part.x, b.x[idx])
        assert part.num_graphs == len(want_graphs)
        assert torch.equal(pairs.graph_idx[part.batch], b.batch[idx])
        if part.edge_index.numel():
            assert int(part.edge_index.max()) < part.x.shape[0]
        # edges never cross graphs
        assert torch.equal(part.batch[part.edge_index[0]], part.batch[part.edge_index[1]])


def test_substructure_within_k_hops_and_context_in_ring_defaults() -> None:
    b = _batch()
    # center 0 of the long ester: d(0, v) is large for most atoms, so the ring is non-empty
    centers = torch.tensor([0])
    pairs = extract_substructure_context(b, centers, 5, 4, 7)
    adj: dict[int, list[int]] = {i: [] for i in range(b.x.shape[0])}
    for u, v in b.edge_index.T.tolist():
        adj[u].append(v)
    d = _bfs(adj, 0)
    assert pairs.graph_idx.tolist() == [0] and pairs.num_skipped == b.num_graphs - 1
    assert all(d[v] <= 5 for v in pairs.substruct_atom_idx.tolist())
    assert all(4 < d[v] <= 7 for v in pairs.context_atom_idx.tolist())
    assert sorted(d[int(v)] for v in pairs.context_atom_idx[pairs.anchor]) == [5]


def test_small_molecules_are_skipped_and_reported() -> None:
    b = _batch(["CCO", "C", "[Na+].[Cl-]", "CCCCCCCCCCCC", "CCCCCCCCCCCCC"])
    method = ContextPred(dim=32, num_layers=2)
    torch.manual_seed(0)
    loss, logs = method.loss(_encoder(), b, torch.Generator().manual_seed(0))
    # K=2, r1=1: a graph needs an atom 2 hops from its center, which CCO (center C2) lacks
    assert logs["n_skipped"] + logs["n_pairs"] == 5
    assert logs["n_skipped"] >= 2  # "C" and the bond-less salt never have a context
    assert torch.isfinite(loss)


def test_fewer_than_two_pairs_gives_zero_loss_that_backpropagates() -> None:
    method = ContextPred(dim=32, num_layers=2)
    enc = _encoder()
    loss, logs = method.loss(enc, _batch(["C", "CCO"]), torch.Generator().manual_seed(0))
    assert logs["n_pairs"] < 2 and float(loss.detach()) == 0.0
    loss.backward()


def test_hparams_defaults_and_rebuild() -> None:
    m = ContextPred()
    assert (m.hparams["r1"], m.hparams["r2"], m.hparams["num_layers"]) == (4, 7, 5)
    assert m.context_encoder.num_layers == 3  # r2 - r1, as pretrain-gnns
    assert m.hparams["mode"] == "cbow" and m.hparams["context_pooling"] == "mean"
    assert m.hparams["neg_samples"] == 1
    again = METHODS[m.name](**m.hparams)
    assert again.hparams == m.hparams
    assert {k: v.shape for k, v in again.state_dict().items()} == {
        k: v.shape for k, v in m.state_dict().items()
    }
    with pytest.raises(ValueError, match="r1"):
        ContextPred(num_layers=3, r1=3)
    with pytest.raises(ValueError, match="mode"):
        ContextPred(mode="glove")
    with pytest.raises(ValueError, match="num_layers=2"):
        ContextPred(dim=32).loss(_encoder(2), _batch())


def test_negative_shifts_never_pair_a_graph_with_itself() -> None:
    m = ContextPred(dim=32, num_layers=2, neg_samples=4)
    assert m._shifts(2) == [1, 1, 1, 1]
    assert m._shifts(3) == [1, 2, 1, 2]
    assert m._shifts(10) == [1, 2, 3, 4]


@pytest.mark.parametrize("mode", ["cbow", "skipgram"])
def test_loss_decreases_on_bbbp(mode: str) -> None:
    torch.manual_seed(0)
    b = _bbbp_batch(32)
    enc = _encoder(2, 32)
    method = ContextPred(dim=32, num_layers=2, mode=mode, neg_samples=2)
    opt = torch.optim.Adam([*enc.parameters(), *method.parameters()], lr=3e-3)
    losses = []
    for _ in range(30):
        # the same centers every step, so the objective is fixed and must go down
        loss, logs = method.loss(enc, b, torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert logs["n_pairs"] >= 16
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3]), losses
    assert logs["acc"] > 0.6


def test_logit_scale_multiplies_logits_and_keeps_accuracy() -> None:
    enc = _encoder(2, 32)
    b = _batch()
    plain = ContextPred(dim=32, num_layers=2, neg_samples=2)
    tiny = ContextPred(dim=32, num_layers=2, neg_samples=2, logit_scale=1e-9)
    tiny.load_state_dict(plain.state_dict())
    with torch.no_grad():
        loss1, logs1 = plain.loss(enc, b, torch.Generator().manual_seed(3))
        loss0, logs0 = tiny.loss(enc, b, torch.Generator().manual_seed(3))
    # logits ~0: every BCE term is ln 2, so loss = (1 + neg_samples) ln 2
    assert float(loss0) == pytest.approx(3 * np.log(2), abs=1e-6)
    assert abs(float(loss1) - 3 * np.log(2)) > 1e-3
    assert logs0["acc"] == logs1["acc"]  # a positive factor keeps every logit's sign
    assert tiny.hparams["logit_scale"] == 1e-9 and plain.hparams["logit_scale"] == 1.0
    assert METHODS["contextpred"](**tiny.hparams).logit_scale == 1e-9
    with pytest.raises(ValueError, match="logit_scale"):
        ContextPred(logit_scale=0.0)
