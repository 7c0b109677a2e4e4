"""Graph augmentations of GraphCL (You et al. 2020), batched, with one choice per graph.

The five augmentations of GraphCL's molecule code (``MoleculeDataset_graphcl``), in its
order, so that augmentation pair ``p`` of JOAO is ``(p // 5, p % 5)``:

0. ``node_drop``  -- drop ``int(n * strength)`` random atoms (and their bonds);
1. ``subgraph``   -- keep a connected ``int(n * (1 - strength)) + 1`` atoms grown from a random
   atom (:func:`~fewmol.pretrain.masking.subgraph_keep`, whole BFS shells);
2. ``edge_pert``  -- remove ``int(b * strength)`` of the ``b`` bonds and add as many new bonds
   between unbonded atom pairs, with random bond features;
3. ``attr_mask``  -- replace ``int(n * strength)`` atoms by the featuriser's mask token
   (:func:`~fewmol.pretrain.masking.apply_atom_mask`);
4. ``identity``.

:func:`augment` applies a (num_graphs,) vector of augmentation ids to a batch at once: every
augmentation works on the whole batch restricted to the graphs that chose it, so the only
Python loop is over the handful of augmentation types. The input batch is never modified.

Differences from GraphCL's code, on purpose: bonds are removed and added as undirected pairs
(both directions), never as self-loops (GraphCL perturbs directed edges independently, which
leaves one-way bonds); ``attr_mask`` writes the mask token (GraphCL writes the molecule's mean
feature row, roughly a carbon); ``subgraph`` grows whole hop shells instead of one random
frontier atom at a time.
"""

from __future__ import annotations

import torch

from fewmol.chem.featurize import OGB_BOND_VOCAB, FeaturizerSpec, get_featurizer
from fewmol.data.collate import GraphBatch
from fewmol.pretrain.masking import (
    _rand,
    apply_atom_mask,
    induced_subgraph,
    pair_keys,
    pairs_within_graphs,
    sample_per_graph,
    segment_counts,
    subgraph_keep,
)

AUGMENTATIONS = ("node_drop", "subgraph", "edge_pert", "attr_mask", "identity")
NODE_DROP, SUBGRAPH, EDGE_PERT, ATTR_MASK, IDENTITY = range(len(AUGMENTATIONS))
NUM_PAIRS = len(AUGMENTATIONS) ** 2


def real_bond_classes(spec: FeaturizerSpec) -> tuple[int, ...]:
    """Categories per bond feature column that real bonds take (no self-loop/mask/unknown).

    ``hu2019``: 4 types (single, double, triple, aromatic) x 3 directions, as GraphCL's
    ``randint(4)``, ``randint(3)``; ``ogb``: its value lists without the extra tokens.
    """
    if spec.name == "hu2019":
        return (4, 3)
    if spec.name == "ogb":
        return tuple(OGB_BOND_VOCAB)
    raise ValueError(f"no bond vocabulary known for featurizer {spec.name!r}")


def _per_graph(counts: torch.Tensor, strength: float, selected: torch.Tensor) -> torch.Tensor:
    """``int(count * strength)`` for the selected graphs, 0 for the others."""
    return torch.floor(counts.double() * strength).long() * selected.long()


def node_drop_keep(
    batch: GraphBatch,
    strength: float,
    selected: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Atoms kept after dropping ``int(n * strength)`` random atoms of each selected graph.

    Shapes: selected (num_graphs,) bool -> keep (n_atoms,) bool.
    """
    counts = segment_counts(batch.batch, batch.num_graphs)
    drop = sample_per_graph(
        batch.batch, batch.num_graphs, _per_graph(counts, strength, selected), generator
    )
    keep = torch.ones(batch.x.shape[0], dtype=torch.bool, device=batch.x.device)
    keep[drop] = False
    return keep


def attr_mask_atoms(
    batch: GraphBatch,
    strength: float,
    selected: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``int(n * strength)`` random atoms of each selected graph, to be masked (ascending)."""
    counts = segment_counts(batch.batch, batch.num_graphs)
    return sample_per_graph(
        batch.batch, batch.num_graphs, _per_graph(counts, strength, selected), generator
    )


def perturb_edges(
    batch: GraphBatch,
    strength: float,
    selected: torch.Tensor,
    spec: FeaturizerSpec,
    generator: torch.Generator | None = None,
) -> GraphBatch:
    """Remove ``int(b * strength)`` bonds of each selected graph and add as many new ones.

    New bonds join distinct atoms of the same graph that were not bonded, both directions,
    with bond features drawn uniformly from :func:`real_bond_classes`. Fewer are added where a
    graph has fewer free pairs (a small, dense molecule). Atoms are untouched.
    """
    n, g = batch.x.shape[0], batch.num_graphs
    device = batch.x.device
    src, dst = batch.edge_index[0], batch.edge_index[1]
    forward = (src < dst).nonzero().squeeze(1)  # one directed edge per bond
    bond_graph = batch.batch[src[forward]]
    k = _per_graph(segment_counts(bond_graph, g), strength, selected)
    dropped = forward[sample_per_graph(bond_graph, g, k, generator)]
    edge_key = pair_keys(src, dst, n)
    keep_edge = ~torch.isin(edge_key, edge_key[dropped])

    pairs = pairs_within_graphs(batch.batch, g, selected)
    free = ~torch.isin(pair_keys(pairs[0], pairs[1], n), edge_key)
    pairs = pairs[:, free]
    added = pairs[:, sample_per_graph(batch.batch[pairs[0]], g, k, generator)]
    m = added.shape[1]
    classes = torch.tensor(real_bond_classes(spec), dtype=torch.float64, device=device)
    draws = _rand(m * len(classes), generator, device).view(m, len(classes))
    attr = torch.floor(draws * classes).long()
    attr = attr.to(batch.edge_attr.dtype)
    edge_index = torch.cat([batch.edge_index[:, keep_edge], added, added.flip(0)], dim=1)
    edge_attr = torch.cat([batch.edge_attr[keep_edge], attr, attr])
    return GraphBatch(
        x=batch.x,
        edge_index=edge_index,
        edge_attr=edge_attr,
        batch=batch.batch,
        num_graphs=g,
        y=batch.y,
        index=batch.index,
    )


def augment(
    batch: GraphBatch,
    aug: torch.Tensor,
    strength: float = 0.2,
    generator: torch.Generator | None = None,
    featurizer: str | FeaturizerSpec = "hu2019",
) -> GraphBatch:
    """Apply augmentation ``aug[g]`` (an index of :data:`AUGMENTATIONS`) to each graph ``g``.

    Every graph keeps at least one atom, and graph ids stay 0..num_graphs-1 in order, so the
    views of two calls line up graph by graph. Shapes: aug (num_graphs,) int64.
    """
    if not 0.0 <= strength < 1.0:
        raise ValueError(f"augmentation strength must be in [0, 1), got {strength}")
    spec = get_featurizer(featurizer) if isinstance(featurizer, str) else featurizer
    aug = aug.to(device=batch.x.device, dtype=torch.long)
    if aug.shape != (batch.num_graphs,):
        raise ValueError(f"need one augmentation per graph, got shape {tuple(aug.shape)}")
    out = batch
    chosen = aug == ATTR_MASK
    if bool(chosen.any()):
        out = apply_atom_mask(out, attr_mask_atoms(out, strength, chosen, generator), spec).batch
    chosen = aug == EDGE_PERT
    if bool(chosen.any()):
        out = perturb_edges(out, strength, chosen, spec, generator)
    keep = None
    chosen = aug == NODE_DROP
    if bool(chosen.any()):
        keep = node_drop_keep(out, strength, chosen, generator)
    chosen = aug == SUBGRAPH
    if bool(chosen.any()):
        sub = subgraph_keep(out, strength, generator) | ~chosen[out.batch]
        keep = sub if keep is None else keep & sub
    if keep is not None:
        out = induced_subgraph(out, keep).batch
    return out


def sample_pairs(
    prob: torch.Tensor, num_graphs: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One augmentation pair per graph drawn from ``prob`` (NUM_PAIRS,), as (num_graphs,)."""
    device = generator.device if generator is not None else prob.device
    p = prob.detach().to(device=device, dtype=torch.float64)
    return torch.multinomial(p, num_graphs, replacement=True, generator=generator).to(prob.device)
