"""fewmol.pretrain.augment: GraphCL's augmentations, batched, one per graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewmol.chem.featurize import FEATURIZERS
from fewmol.pretrain.augment import (
    ATTR_MASK,
    AUGMENTATIONS,
    EDGE_PERT,
    IDENTITY,
    NODE_DROP,
    NUM_PAIRS,
    SUBGRAPH,
    augment,
    perturb_edges,
    real_bond_classes,
    sample_pairs,
)
from fewmol.pretrain.masking import hop_distances


def _counts(batch) -> list[int]:
    return torch.bincount(batch.batch, minlength=batch.num_graphs).tolist()


def _bonds(batch) -> set[tuple[int, int, int]]:
    """(graph, local u, local v) of every bond, u < v."""
    start = torch.cumsum(torch.bincount(batch.batch, minlength=batch.num_graphs), 0)
    start = torch.cat([torch.zeros(1, dtype=torch.long), start[:-1]])
    out = set()
    for u, v in batch.edge_index.T.tolist():
        if u < v:
            g = int(batch.batch[u])
            out.add((g, u - int(start[g]), v - int(start[g])))
    return out


def test_order_matches_graphcl_and_pairs() -> None:
    assert AUGMENTATIONS == ("node_drop", "subgraph", "edge_pert", "attr_mask", "identity")
    assert NUM_PAIRS == 25
    assert real_bond_classes(FEATURIZERS["hu2019"]) == (4, 3)
    assert real_bond_classes(FEATURIZERS["ogb"]) == (4, 6, 2)


@pytest.mark.parametrize("featurizer", ["hu2019", "ogb"])
@pytest.mark.parametrize("aug", range(5))
def test_each_augmentation_keeps_graphs_valid(small_batch, assert_valid, featurizer, aug) -> None:
    b = small_batch(featurizer=featurizer)
    before = (b.x.clone(), b.edge_index.clone(), b.edge_attr.clone())
    for seed in range(5):
        out = augment(b, torch.full((b.num_graphs,), aug), 0.2, torch.Generator().manual_seed(seed),
                      featurizer)  # fmt: skip
        assert_valid(out, featurizer)
        assert out.num_graphs == b.num_graphs
    # the input batch is never modified
    assert torch.equal(b.x, before[0]) and torch.equal(b.edge_index, before[1])
    assert torch.equal(b.edge_attr, before[2])


def test_node_drop_and_subgraph_sizes(small_batch) -> None:
    b = small_batch()
    n = _counts(b)
    g = b.num_graphs
    out = augment(b, torch.full((g,), NODE_DROP), 0.2, torch.Generator().manual_seed(0))
    assert _counts(out) == [k - int(k * 0.2) for k in n]
    out = augment(b, torch.full((g,), SUBGRAPH), 0.2, torch.Generator().manual_seed(0))
    assert _counts(out) == [min(k, int(k * 0.8) + 1) for k in n]
    # the subgraph of a connected molecule is connected: BFS from any kept atom reaches all
    start = torch.cumsum(torch.tensor([0, *_counts(out)]), 0)
    for gi, smi_connected in enumerate([True, True, False, True, True, True, True, True]):
        if not smi_connected:
            continue
        dist = hop_distances(out.edge_index, out.x.shape[0], start[gi : gi + 1], 100)
        assert bool((dist[start[gi] : start[gi + 1]] >= 0).all()), gi


def test_attr_mask_masks_int_n_times_strength_atoms(small_batch) -> None:
    b = small_batch()
    out = augment(b, torch.full((b.num_graphs,), ATTR_MASK), 0.3, torch.Generator().manual_seed(1))
    masked = (out.x[:, 0] == FEATURIZERS["hu2019"].mask_atom[0]).long()
    per_graph = torch.zeros(b.num_graphs, dtype=torch.long).index_add(0, b.batch, masked)
    assert per_graph.tolist() == [int(k * 0.3) for k in _counts(b)]
    assert torch.equal(out.edge_index, b.edge_index)


def test_edge_perturbation_swaps_bonds_for_new_ones(bbbp_batch, assert_valid) -> None:
    b = bbbp_batch
    old = _bonds(b)
    selected = torch.zeros(b.num_graphs, dtype=torch.bool)
    selected[::2] = True
    out = perturb_edges(b, 0.2, selected, FEATURIZERS["hu2019"], torch.Generator().manual_seed(3))
    assert_valid(out)
    new = _bonds(out)
    for g in range(b.num_graphs):
        og = {e for e in old if e[0] == g}
        ng = {e for e in new if e[0] == g}
        k = int(len(og) * 0.2) if selected[g] else 0
        assert len(og - ng) == k and len(ng - og) == k, g  # removed and added, never re-added
    # added bonds carry real bond categories (no self-loop / mask tokens)
    added_attr = out.edge_attr[b.edge_index.shape[1] - 2 * len(old - new) :]
    assert added_attr[:, 0].max() < 4 and added_attr[:, 1].max() < 3


def test_mixed_choices_act_per_graph_and_are_reproducible(small_batch, assert_valid) -> None:
    b = small_batch()
    aug = torch.tensor([NODE_DROP, SUBGRAPH, EDGE_PERT, ATTR_MASK, IDENTITY, NODE_DROP, SUBGRAPH,
                        ATTR_MASK])  # fmt: skip
    a = augment(b, aug, 0.2, torch.Generator().manual_seed(7))
    c = augment(b, aug, 0.2, torch.Generator().manual_seed(7))
    assert torch.equal(a.x, c.x) and torch.equal(a.edge_index, c.edge_index)
    assert_valid(a)
    n = _counts(b)
    expect = [k - int(0.2 * k) if t == NODE_DROP else min(k, int(0.8 * k) + 1) if t == SUBGRAPH
              else k for k, t in zip(n, aug.tolist())]  # fmt: skip
    assert _counts(a) == expect
    # the identity graph (index 4) is untouched
    rows_in = b.x[b.batch == 4]
    rows_out = a.x[a.batch == 4]
    assert torch.equal(rows_in, rows_out)


def test_bad_arguments_raise(small_batch) -> None:
    b = small_batch()
    with pytest.raises(ValueError, match="strength"):
        augment(b, torch.zeros(b.num_graphs, dtype=torch.long), 1.0)
    with pytest.raises(ValueError, match="one augmentation per graph"):
        augment(b, torch.zeros(3, dtype=torch.long), 0.2)


def test_sample_pairs_follows_the_distribution() -> None:
    p = torch.zeros(NUM_PAIRS)
    p[7] = 1.0
    assert sample_pairs(p, 50, torch.Generator().manual_seed(0)).unique().tolist() == [7]
    p = torch.full((NUM_PAIRS,), 1.0 / NUM_PAIRS)
    draws = sample_pairs(p, 5000, torch.Generator().manual_seed(0))
    freq = np.bincount(draws.numpy(), minlength=NUM_PAIRS) / 5000
    assert np.abs(freq - 0.04).max() < 0.015
