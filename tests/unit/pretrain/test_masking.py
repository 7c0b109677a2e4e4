"""fewmol.pretrain.masking: per-graph sampling, atom/bond masking, BFS, induced subgraphs."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch

from fewmol.chem.featurize import FEATURIZERS, featurize_smiles
from fewmol.data.collate import GraphBatch, GraphSet
from fewmol.pretrain.masking import (
    apply_atom_mask,
    hop_distances,
    induced_subgraph,
    mask_atoms,
    mask_bond_token,
    num_to_mask,
    sample_per_graph,
    segment_counts,
)

SMILES = [
    "CCO",
    "c1ccccc1C(=O)O",
    "[Na+].[Cl-]",  # two atoms, no bonds
    "F/C=C/F",
    "C[C@H](N)C#N",
    "C",
    "CCCCCCCCCCCCCCCCCC(=O)OC1CCC(N)CC1",
    "O=C(O)c1ccccc1OC(C)=O",
]


def _batch(featurizer: str = "hu2019", smiles: list[str] = SMILES) -> GraphBatch:
    spec = FEATURIZERS[featurizer]
    gs = GraphSet.from_graphs(
        [featurize_smiles(s, featurizer) for s in smiles], len(spec.atom_dims), len(spec.bond_dims)
    )
    return gs.collate(np.arange(len(smiles)))


def _clone(b: GraphBatch) -> GraphBatch:
    return GraphBatch(
        b.x.clone(), b.edge_index.clone(), b.edge_attr.clone(), b.batch.clone(), b.num_graphs
    )


def _same(a: GraphBatch, b: GraphBatch) -> bool:
    return (
        torch.equal(a.x, b.x)
        and torch.equal(a.edge_index, b.edge_index)
        and torch.equal(a.edge_attr, b.edge_attr)
        and torch.equal(a.batch, b.batch)
        and a.num_graphs == b.num_graphs
    )


def _assert_valid(b: GraphBatch, featurizer: str) -> None:
    spec = FEATURIZERS[featurizer]
    n = b.x.shape[0]
    assert b.edge_index.dtype == torch.long and b.x.dtype == torch.long
    if b.edge_index.numel():
        assert int(b.edge_index.min()) >= 0 and int(b.edge_index.max()) < n
    assert b.edge_attr.shape[0] == b.edge_index.shape[1]
    for k, d in enumerate(spec.atom_dims):
        assert int(b.x[:, k].min()) >= 0 and int(b.x[:, k].max()) < d
    for k, d in enumerate(spec.bond_dims):
        if b.edge_attr.numel():
            assert int(b.edge_attr[:, k].min()) >= 0 and int(b.edge_attr[:, k].max()) < d


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- sampling
def test_num_to_mask_matches_pretrain_gnns_formula() -> None:
    n = torch.arange(0, 60)
    for ratio in (0.0, 0.15, 0.25, 0.5, 1.0):
        got = num_to_mask(n, ratio).tolist()
        want = [min(int(i * ratio + 1), i) for i in range(60)]
        assert got == want
    assert num_to_mask(torch.tensor([10, 20, 1]), 0.15).tolist() == [2, 4, 1]


def test_sample_per_graph_counts_distinct_and_within_segment() -> None:
    # non-contiguous segments and an empty graph (id 3)
    batch = torch.tensor([0, 1, 0, 2, 2, 1, 0, 2, 2, 2, 4])
    k = torch.tensor([2, 5, 1, 3, 1])
    idx = sample_per_graph(batch, 5, k, _gen(0))
    assert torch.equal(idx, torch.sort(idx).values)
    assert len(set(idx.tolist())) == len(idx)
    counts = segment_counts(batch[idx], 5).tolist()
    assert counts == [2, 2, 1, 0, 1]  # capped at the segment sizes (3, 2, 5, 0, 1)


def test_sample_per_graph_reproducible_and_uniform() -> None:
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor([4, 6, 5]))
    a = sample_per_graph(batch, 3, 2, _gen(7))
    b = sample_per_graph(batch, 3, 2, _gen(7))
    assert torch.equal(a, b)
    g = _gen(1)
    hits = torch.zeros(15)
    for _ in range(600):
        hits[sample_per_graph(batch, 3, 1, g)] += 1
    # every atom drawn, roughly 1/size of its graph's draws
    expected = torch.tensor([600 / 4] * 4 + [600 / 6] * 6 + [600 / 5] * 5)
    assert (hits > 0).all()
    assert torch.allclose(hits, expected, rtol=0.35)


# ---------------------------------------------------------------- masking
@pytest.mark.parametrize("featurizer", ["hu2019", "ogb"])
def test_mask_atoms_valid_counts_tokens_and_labels(featurizer: str) -> None:
    b = _batch(featurizer)
    before = _clone(b)
    spec = FEATURIZERS[featurizer]
    m = mask_atoms(b, 0.15, _gen(0), featurizer)
    assert _same(b, before), "input batch modified in place"
    _assert_valid(m.batch, featurizer)
    counts = segment_counts(b.batch, b.num_graphs)
    assert segment_counts(b.batch[m.atom_idx], b.num_graphs).tolist() == [
        min(int(n * 0.15 + 1), n) for n in counts.tolist()
    ]
    mask_row = torch.tensor(spec.mask_atom)
    assert (m.batch.x[m.atom_idx] == mask_row).all()
    assert torch.equal(m.atom_labels, b.x[m.atom_idx])
    assert (m.atom_labels[:, 0] < spec.mask_atom[0]).all()  # labels never the mask token
    untouched = torch.ones(b.x.shape[0], dtype=torch.bool)
    untouched[m.atom_idx] = False
    assert torch.equal(m.batch.x[untouched], b.x[untouched])
    assert torch.equal(m.batch.edge_attr, b.edge_attr)
    assert m.edge_idx is None and m.edge_labels is None


def test_mask_atoms_hu2019_uses_pretrain_gnns_tokens() -> None:
    m = mask_atoms(_batch(), 0.3, _gen(0), "hu2019", mask_edge=True)
    assert (m.batch.x[m.atom_idx] == torch.tensor([119, 0])).all()
    assert mask_bond_token(FEATURIZERS["hu2019"]) == (5, 0)
    changed = (m.batch.edge_attr != _batch().edge_attr).any(1)
    assert changed.any()
    assert (m.batch.edge_attr[changed] == torch.tensor([5, 0])).all()


@pytest.mark.parametrize("featurizer", ["hu2019", "ogb"])
def test_mask_edge_masks_exactly_incident_bonds(featurizer: str) -> None:
    b = _batch(featurizer)
    before = _clone(b)
    m = mask_atoms(b, 0.25, _gen(3), featurizer, mask_edge=True)
    assert _same(b, before)
    _assert_valid(m.batch, featurizer)
    masked = set(m.atom_idx.tolist())
    src, dst = b.edge_index.tolist()
    incident = [u in masked or v in masked for u, v in zip(src, dst)]
    token = torch.tensor(mask_bond_token(FEATURIZERS[featurizer]))
    for e, inc in enumerate(incident):
        if inc:
            assert torch.equal(m.batch.edge_attr[e], token)
        else:
            assert torch.equal(m.batch.edge_attr[e], b.edge_attr[e])
    # one label per masked bond, at its src < dst direction, with the original features
    want = [e for e, inc in enumerate(incident) if inc and src[e] < dst[e]]
    assert m.edge_idx.tolist() == want
    assert len(want) * 2 == sum(incident)
    assert torch.equal(m.edge_labels, b.edge_attr[want])
    assert (m.edge_labels[:, 0] < FEATURIZERS[featurizer].self_loop_bond[0]).all()


def test_mask_atoms_reproducible_with_seeded_generator() -> None:
    b = _batch()
    a1 = mask_atoms(b, 0.15, _gen(11), mask_edge=True)
    a2 = mask_atoms(b, 0.15, _gen(11), mask_edge=True)
    assert torch.equal(a1.atom_idx, a2.atom_idx)
    assert _same(a1.batch, a2.batch)
    assert torch.equal(a1.edge_idx, a2.edge_idx)
    others = [mask_atoms(b, 0.15, _gen(s)).atom_idx for s in range(5)]
    assert any(not torch.equal(others[0], o) for o in others[1:])


def test_apply_atom_mask_given_atoms_and_no_bonds() -> None:
    b = _batch(smiles=["[Na+].[Cl-]", "C"])
    m = apply_atom_mask(b, torch.tensor([1, 2]), "hu2019", mask_edge=True)
    assert torch.equal(m.atom_labels, b.x[[1, 2]])
    assert m.atom_labels[:, 0].tolist()[1] == 5  # carbon: Z - 1
    assert (m.batch.x[[1, 2]] == torch.tensor([119, 0])).all()
    assert m.edge_idx.numel() == 0 and m.edge_labels.shape == (0, 2)


# ---------------------------------------------------------------- BFS and subgraphs
def _bfs(n: int, edges: list[tuple[int, int]], source: int) -> dict[int, int]:
    adj: dict[int, list[int]] = {i: [] for i in range(n)}
    for u, v in edges:
        adj[u].append(v)
    dist = {source: 0}
    q = deque([source])
    while q:
        u = q.popleft()
        for v in adj[u]:
            if v not in dist:
                dist[v] = dist[u] + 1
                q.append(v)
    return dist


def test_hop_distances_match_python_bfs() -> None:
    b = _batch()
    centers = sample_per_graph(b.batch, b.num_graphs, 1, _gen(2))
    dist = hop_distances(b.edge_index, b.x.shape[0], centers, 6).tolist()
    edges = list(zip(*b.edge_index.tolist()))
    for c in centers.tolist():
        ref = _bfs(b.x.shape[0], edges, c)
        for v in (b.batch == b.batch[c]).nonzero().squeeze(1).tolist():
            want = ref[v] if v in ref and ref[v] <= 6 else -1
            assert dist[v] == want


def test_induced_subgraph_keeps_exactly_edges_between_kept_atoms() -> None:
    b = _batch()
    b.y = torch.arange(b.num_graphs, dtype=torch.float32).unsqueeze(1)
    keep = torch.rand(b.x.shape[0], generator=_gen(4)) < 0.6
    keep[b.batch == 2] = False  # graph 2 becomes empty
    for drop in (False, True):
        s = induced_subgraph(b, keep, drop_empty_graphs=drop)
        _assert_valid(s.batch, "hu2019")
        kept = keep.nonzero().squeeze(1)
        assert torch.equal(s.atom_idx, kept)
        assert torch.equal(s.batch.x, b.x[kept])
        old = s.atom_idx
        got = {(int(old[u]), int(old[v])) for u, v in s.batch.edge_index.T.tolist()}
        want = {(u, v) for u, v in b.edge_index.T.tolist() if keep[u] and keep[v]}
        assert got == want
        assert torch.equal(s.batch.edge_attr, b.edge_attr[s.edge_idx])
        # each kept atom stays in its graph (renumbered when empty graphs are dropped)
        assert torch.equal(s.graph_idx[s.batch.batch], b.batch[kept])
        assert torch.equal(s.batch.y[:, 0].long(), s.graph_idx)
        assert s.batch.num_graphs == (b.num_graphs - 1 if drop else b.num_graphs)
