"""fewmol.data.collate: GraphSet storage and vectorised batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewmol.chem.featurize import MolGraph, featurize_smiles
from fewmol.data.collate import GraphBatch, GraphSet

SMILES = ["CCO", "[Na+]", "c1ccccc1", "C", "F/C=C/F", "C[C@H](N)C(=O)O", "CC#N"]


@pytest.fixture(scope="module")
def graphs() -> list[MolGraph]:
    return [featurize_smiles(s) for s in SMILES]


@pytest.fixture(scope="module")
def gs(graphs: list[MolGraph]) -> GraphSet:
    return GraphSet.from_graphs(graphs)


def _by_hand(graphs: list[MolGraph], idx: list[int]) -> dict[str, np.ndarray]:
    xs, eis, eas, batch = [], [], [], []
    offset = 0
    for b, i in enumerate(idx):
        g = graphs[i]
        xs.append(g.x)
        eis.append(g.edge_index + offset)
        eas.append(g.edge_attr)
        batch.append(np.full(len(g.x), b))
        offset += len(g.x)
    return {
        "x": np.concatenate(xs),
        "edge_index": np.concatenate(eis, axis=1),
        "edge_attr": np.concatenate(eas),
        "batch": np.concatenate(batch),
    }


def _graph(gs: GraphSet, i: int) -> MolGraph:
    a0, a1 = gs.atom_ptr[i], gs.atom_ptr[i + 1]
    e0, e1 = gs.edge_ptr[i], gs.edge_ptr[i + 1]
    return MolGraph(gs.x[a0:a1], gs.edge_index[:, e0:e1], gs.edge_attr[e0:e1])


def _assert_graph_equal(a: MolGraph, b: MolGraph) -> None:
    for u, v in zip(a, b):
        assert u.shape == v.shape
        assert np.array_equal(u, v)


def test_from_graphs_layout(graphs: list[MolGraph], gs: GraphSet) -> None:
    assert len(gs) == len(SMILES)
    n_atoms = [len(g.x) for g in graphs]
    n_edges = [g.edge_index.shape[1] for g in graphs]
    assert gs.atom_ptr.tolist() == [0, *np.cumsum(n_atoms).tolist()]
    assert gs.edge_ptr.tolist() == [0, *np.cumsum(n_edges).tolist()]
    assert gs.num_atoms().tolist() == n_atoms
    assert gs.x.shape == (sum(n_atoms), 2) and gs.edge_index.shape == (2, sum(n_edges))
    for arr in gs.arrays().values():
        assert arr.dtype == np.int64
    for i, g in enumerate(graphs):
        _assert_graph_equal(_graph(gs, i), g)  # edge indices stay local per graph


def test_from_graphs_empty() -> None:
    empty = GraphSet.from_graphs([], n_atom_feat=9, n_bond_feat=3)
    assert len(empty) == 0
    assert empty.x.shape == (0, 9) and empty.edge_attr.shape == (0, 3)
    assert empty.edge_index.shape == (2, 0)
    assert empty.atom_ptr.tolist() == [0] and empty.edge_ptr.tolist() == [0]


@pytest.mark.parametrize("idx", [[4, 1, 0], [3], [1, 3], [6, 5, 4, 3, 2, 1, 0], [2, 2]])
def test_subset_keeps_graphs_in_given_order(
    graphs: list[MolGraph], gs: GraphSet, idx: list[int]
) -> None:
    sub = gs.subset(np.asarray(idx))
    assert len(sub) == len(idx)
    for k, i in enumerate(idx):
        _assert_graph_equal(_graph(sub, k), graphs[i])


def test_concat_equals_from_graphs_of_all(graphs: list[MolGraph], gs: GraphSet) -> None:
    parts = [GraphSet.from_graphs(graphs[a:b]) for a, b in [(0, 2), (2, 5), (5, 7)]]
    joined = GraphSet.concat(parts)
    for k, v in gs.arrays().items():
        assert np.array_equal(joined.arrays()[k], v), k
    # empty parts are skipped
    with_empty = GraphSet.concat([GraphSet.from_graphs([]), *parts, GraphSet.from_graphs([])])
    for k, v in gs.arrays().items():
        assert np.array_equal(with_empty.arrays()[k], v), k
    # subsets concatenated back give the whole set
    back = GraphSet.concat([gs.subset(np.arange(3)), gs.subset(np.arange(3, len(gs)))])
    for k, v in gs.arrays().items():
        assert np.array_equal(back.arrays()[k], v), k


@pytest.mark.parametrize("idx", [[0, 1, 2], [5, 1, 3, 4], [3, 1], [2], list(range(7))])
def test_collate_equals_batch_built_by_hand(
    graphs: list[MolGraph], gs: GraphSet, idx: list[int]
) -> None:
    b = gs.collate(idx)
    ref = _by_hand(graphs, idx)
    assert isinstance(b, GraphBatch)
    assert b.num_graphs == len(idx)
    for name in ("x", "edge_index", "edge_attr", "batch"):
        t = getattr(b, name)
        assert t.dtype == torch.int64, name
        assert np.array_equal(t.numpy(), ref[name]), name
    assert b.index.tolist() == idx
    assert b.y is None
    # edges only join atoms of the same graph
    ei = b.edge_index.numpy()
    assert np.array_equal(b.batch.numpy()[ei[0]], b.batch.numpy()[ei[1]])


def test_collate_of_subset_equals_collate_of_original(gs: GraphSet) -> None:
    sel = np.array([6, 1, 3, 2])
    sub = gs.subset(sel)
    a = sub.collate(np.arange(len(sel)))
    b = gs.collate(sel)
    for name in ("x", "edge_index", "edge_attr", "batch"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.index.tolist() == [0, 1, 2, 3]
    assert b.index.tolist() == sel.tolist()


def test_collate_with_only_edgeless_graphs(gs: GraphSet) -> None:
    b = gs.collate([1, 3])  # [Na+], C
    assert b.x.shape == (2, 2)
    assert b.edge_index.shape == (2, 0) and b.edge_attr.shape == (0, 2)
    assert b.batch.tolist() == [0, 1]


def test_collate_edgeless_graphs_between_others_shift_offsets(
    graphs: list[MolGraph], gs: GraphSet
) -> None:
    b = gs.collate([1, 0, 3, 2])
    n0 = len(graphs[0].x)
    # ethanol's edges start at atom 1 (after [Na+]), benzene's after [Na+], CCO, C
    e_eth = graphs[0].edge_index.shape[1]
    assert np.array_equal(b.edge_index[:, :e_eth].numpy(), graphs[0].edge_index + 1)
    assert np.array_equal(b.edge_index[:, e_eth:].numpy(), graphs[2].edge_index + 1 + n0 + 1)
    assert b.batch.tolist() == [0] + [1] * n0 + [2] + [3] * 6


def test_collate_labels(gs: GraphSet) -> None:
    y = np.array([[1.0, np.nan], [0.0, 1.0]], dtype=np.float64)
    b = gs.collate([4, 0], y=y)
    assert b.y.dtype == torch.float32 and b.y.shape == (2, 2)
    assert torch.equal(torch.isnan(b.y), torch.tensor([[False, True], [False, False]]))
    assert b.y[0, 0].item() == 1.0 and b.y[1, 1].item() == 1.0


def test_collate_index_is_a_copy(gs: GraphSet) -> None:
    idx = np.array([0, 2])
    b = gs.collate(idx)
    idx[0] = 5
    assert b.index.tolist() == [0, 2]


def test_to_cpu_returns_graph_batch(gs: GraphSet) -> None:
    b = gs.collate([0, 2], y=np.ones((2, 1)))
    moved = b.to("cpu")
    assert isinstance(moved, GraphBatch)
    assert moved.num_graphs == 2
    for name in ("x", "edge_index", "edge_attr", "batch", "y", "index"):
        t = getattr(moved, name)
        assert t.device.type == "cpu"
        assert torch.equal(t, getattr(b, name)), name
    nolabel = gs.collate([1]).to(torch.device("cpu"))
    assert isinstance(nolabel, GraphBatch) and nolabel.y is None


def test_a_training_remainder_of_one_is_dropped_and_no_other() -> None:
    from fewmol.data.module import drop_single_remainder

    assert drop_single_remainder(33, 32) and drop_single_remainder(65, 32)
    assert not drop_single_remainder(34, 32) and not drop_single_remainder(32, 32)
    # per rank under DDP: 66 items on 2 ranks is 33 each
    assert drop_single_remainder(66, 32, world_size=2) and not drop_single_remainder(66, 32)
    assert not drop_single_remainder(5, 1)  # batches of one are what the user asked for
