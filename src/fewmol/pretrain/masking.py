"""Vectorised transforms on a :class:`~fewmol.data.collate.GraphBatch` for 2D pre-training.

Everything here works on a whole batch at once with torch ops (no Python loop over atoms or
edges), on CPU or GPU, and never modifies its input batch: changed tensors are copies, the
unchanged ones are shared with the input.

Generic building blocks, meant for reuse by later methods (GraphCL, JOAO, GraphMVP-G/C):

* :func:`sample_per_graph` -- draw ``k`` distinct items per segment of a batch vector.
* :func:`atoms_by_graph`, :func:`random_atoms_of`, :func:`pairs_within_graphs`,
  :func:`pair_keys` -- atoms grouped by graph, random atoms, all atom pairs of a graph, and
  integer keys of atom pairs (for set membership with ``torch.isin``).
* :func:`num_to_mask` -- how many atoms pretrain-gnns masks in a graph of ``n`` atoms.
* :func:`hop_distances` -- multi-source BFS hop counts over ``edge_index``.
* :func:`bfs_rank` -- a random breadth-first atom order per graph (GPT-GNN's generation order).
* :func:`subgraph_keep` -- a connected region grown from a random atom (GraphMVP's subgraph
  masking, GraphCL's subgraph augmentation).
* :func:`induced_subgraph` -- keep some atoms (and the edges between them), re-indexed.

Masking (AttrMask, Hu et al. 2019, as ``chem/util.py::MaskAtom`` of snap-stanford/pretrain-gnns):

* :func:`mask_atoms` -- sample atoms per graph and replace their features with the mask token.
* :func:`apply_atom_mask` -- the same for given atoms (and optionally their incident bonds).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from fewmol.chem.featurize import HU2019_MASK_BOND, FeaturizerSpec, get_featurizer
from fewmol.data.collate import GraphBatch

#: how GraphMVP masks the 2D view: random atoms, or a connected subgraph removed
MASK_MODES = ("atoms", "subgraph")


# ---------------------------------------------------------------- generic helpers
def segment_counts(batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """Number of items per graph from a batch vector: (n,) -> (num_graphs,) int64."""
    return torch.bincount(batch, minlength=num_graphs)


def _rand(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniform [0, 1) numbers drawn on the generator's device, then moved to ``device``.

    A CPU generator then gives the same draws whatever device the batch lives on.
    """
    gen_device = generator.device if generator is not None else device
    return torch.rand(n, generator=generator, device=gen_device, dtype=torch.float64).to(device)


def sample_per_graph(
    batch: torch.Tensor,
    num_graphs: int,
    k: int | torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``k`` distinct items uniformly at random from each graph's segment, all at once.

    Args:
        batch: (n,) graph id of every item (atoms: ``GraphBatch.batch``; edges:
            ``batch[edge_index[0]]``). Items need not be contiguous per graph.
        num_graphs: number of graphs (segments).
        k: items to draw per graph, an int or a (num_graphs,) tensor; capped at the
            segment size, so empty graphs give nothing.
        generator: torch random generator for reproducible draws.

    Returns:
        (n_selected,) int64 indices into ``batch``, sorted ascending.

    Method: random keys, then a stable sort by graph id puts each graph's items in random
    order; an item is kept when its rank inside its graph is below that graph's ``k``.
    """
    n = batch.shape[0]
    device = batch.device
    counts = segment_counts(batch, num_graphs)
    k_t = torch.as_tensor(k, dtype=torch.long, device=device).expand(num_graphs)
    k_t = torch.minimum(k_t, counts)
    perm = torch.argsort(_rand(n, generator, device))
    perm = perm[torch.argsort(batch[perm], stable=True)]
    starts = torch.cumsum(counts, 0) - counts
    seg = batch[perm]
    rank = torch.arange(n, device=device) - starts[seg]
    return torch.sort(perm[rank < k_t[seg]]).values


def atoms_by_graph(
    batch: torch.Tensor, num_graphs: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Atoms grouped by graph: ``(perm, starts, counts)``.

    ``perm[starts[g] : starts[g] + counts[g]]`` are graph ``g``'s atoms (in input order), so
    no layout of the batch vector is assumed.
    """
    counts = segment_counts(batch, num_graphs)
    perm = torch.argsort(batch, stable=True)
    return perm, torch.cumsum(counts, 0) - counts, counts


def random_atoms_of(
    graphs: torch.Tensor,
    batch: torch.Tensor,
    num_graphs: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One uniformly random atom of graph ``graphs[i]`` for every ``i`` (graphs need atoms)."""
    perm, starts, counts = atoms_by_graph(batch, num_graphs)
    r = _rand(graphs.numel(), generator, batch.device)
    offset = torch.floor(r * counts[graphs].double()).long()
    offset = torch.minimum(offset, counts[graphs] - 1)  # r < 1, but float rounding
    return perm[starts[graphs] + offset]


def pairs_within_graphs(
    batch: torch.Tensor, num_graphs: int, graphs: torch.Tensor | None = None
) -> torch.Tensor:
    """Every unordered atom pair ``(i, j)``, ``i != j``, of the same graph, as (2, n_pairs).

    ``graphs``: optional (num_graphs,) bool, only pairs of those graphs. Built with
    ``repeat_interleave`` over the graph-sorted atom order (sum of n_g (n_g - 1) / 2 pairs).
    """
    perm, starts, counts = atoms_by_graph(batch, num_graphs)
    device = batch.device
    n = batch.numel()
    graph_sorted = batch[perm]
    pos = torch.arange(n, device=device)
    later = starts[graph_sorted] + counts[graph_sorted] - pos - 1  # atoms after it in its graph
    if graphs is not None:
        later = later * graphs[graph_sorted].long()
    first = torch.repeat_interleave(pos, later)
    step = torch.arange(first.numel(), device=device) - torch.repeat_interleave(
        torch.cumsum(later, 0) - later, later
    )
    return torch.stack([perm[first], perm[first + 1 + step]])


def pair_keys(src: torch.Tensor, dst: torch.Tensor, n: int, directed: bool = False) -> torch.Tensor:
    """One int64 per atom pair (``min * n + max`` unless ``directed``), for set membership."""
    if directed:
        return src * n + dst
    return torch.minimum(src, dst) * n + torch.maximum(src, dst)


def num_to_mask(num_atoms: torch.Tensor, ratio: float) -> torch.Tensor:
    """Atoms to mask per graph: ``int(n * ratio + 1)`` as pretrain-gnns, capped at ``n``.

    So at least one atom per non-empty graph, e.g. 15% of 10 atoms -> 2, of 20 atoms -> 4.
    The float64 arithmetic equals Python's ``int(n * ratio + 1)`` exactly.
    """
    k = torch.floor(num_atoms.to(torch.float64) * ratio + 1.0).long()
    return torch.minimum(k, num_atoms)


def hop_distances(
    edge_index: torch.Tensor, num_nodes: int, sources: torch.Tensor, max_hops: int
) -> torch.Tensor:
    """Hop count from the nearest source to every node, by a batched BFS over ``edge_index``.

    One frontier expansion per hop (``max_hops`` sparse gathers over all edges), so a whole
    batch with one source per graph costs O(max_hops * n_edges). Edges are followed
    ``src -> dst``; our graphs store both directions of every bond, so this is plain
    undirected BFS. Nodes farther than ``max_hops`` (or unreachable, e.g. the other
    fragment of a salt) get -1.

    Shapes: edge_index (2, n_edges), sources (n_sources,) -> (num_nodes,) int64.
    """
    device = edge_index.device
    dist = torch.full((num_nodes,), -1, dtype=torch.long, device=device)
    dist[sources] = 0
    frontier = torch.zeros(num_nodes, dtype=torch.bool, device=device)
    frontier[sources] = True
    src, dst = edge_index[0], edge_index[1]
    for step in range(1, max_hops + 1):
        reached = torch.zeros(num_nodes, dtype=torch.bool, device=device)
        reached[dst[frontier[src]]] = True
        reached &= dist < 0
        if not bool(reached.any()):
            break
        dist[reached] = step
        frontier = reached
    return dist


def bfs_rank(batch: GraphBatch, generator: torch.Generator | None = None) -> torch.Tensor:
    """Position of every atom in a random breadth-first order of its graph, all graphs at once.

    Each graph gets a random root; atoms are ordered by hop distance from it, ties in random
    order; atoms of other fragments (unreachable) come last, in random order. Every prefix of
    a connected graph's order is therefore connected (each atom at distance d > 0 has a
    neighbour at d - 1 before it).

    Shapes: -> rank (n_atoms,) int64, 0 for each root.
    """
    n, g = batch.x.shape[0], batch.num_graphs
    device = batch.x.device
    counts = segment_counts(batch.batch, g)
    roots = sample_per_graph(batch.batch, g, 1, generator)
    max_hops = int(counts.max()) if g else 0
    dist = hop_distances(batch.edge_index, n, roots, max_hops)
    dist = torch.where(dist < 0, torch.full_like(dist, n), dist)  # unreachable: after the rest
    key = dist.double() + _rand(n, generator, device)
    order = torch.argsort(key)
    order = order[torch.argsort(batch.batch[order], stable=True)]
    seg = batch.batch[order]
    rank = torch.empty(n, dtype=torch.long, device=device)
    rank[order] = torch.arange(n, device=device) - (torch.cumsum(counts, 0) - counts)[seg]
    return rank


def subgraph_keep(
    batch: GraphBatch, ratio: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Atoms kept by GraphMVP's subgraph masking: a connected region grown from a random atom.

    Each graph of ``n`` atoms keeps ``min(n, int(n * (1 - ratio)) + 1)`` atoms (GraphMVP's
    ``Molecule3DMaskingDataset.subgraph``, and GraphCL's ``subgraph`` augmentation): the first
    atoms of :func:`bfs_rank`'s order. GraphMVP grows its region by sampling one frontier atom
    at a time; taking whole hop shells gives the same kind of connected region with one
    batched BFS instead of a Python loop per molecule.

    Shapes: -> keep (n_atoms,) bool.
    """
    counts = segment_counts(batch.batch, batch.num_graphs)
    k = torch.minimum(torch.floor(counts.double() * (1.0 - ratio)).long() + 1, counts)
    return bfs_rank(batch, generator) < k[batch.batch]


class Subgraph(NamedTuple):
    """An induced sub-batch and where its atoms, edges and graphs came from."""

    batch: GraphBatch
    atom_idx: torch.Tensor
    """(n_sub_atoms,) index of each kept atom in the input batch (ascending)."""
    edge_idx: torch.Tensor
    """(n_sub_edges,) index of each kept edge in the input batch (ascending)."""
    graph_idx: torch.Tensor
    """(sub num_graphs,) input graph id of each output graph."""


def induced_subgraph(
    batch: GraphBatch, keep: torch.Tensor, drop_empty_graphs: bool = False
) -> Subgraph:
    """Keep the atoms where ``keep`` is True and exactly the edges between two kept atoms.

    Atoms keep their order; edge endpoints are re-indexed with a cumulative-sum map. With
    ``drop_empty_graphs`` graphs left without atoms are removed and the rest renumbered
    0..m-1 (``y`` and ``index`` follow); otherwise every graph stays, possibly empty.

    Shapes: keep (n_atoms,) bool.
    """
    keep = keep.to(torch.bool)
    device = keep.device
    atom_idx = keep.nonzero().squeeze(1)
    new_id = torch.cumsum(keep.long(), 0) - 1
    src, dst = batch.edge_index[0], batch.edge_index[1]
    edge_idx = (keep[src] & keep[dst]).nonzero().squeeze(1)
    edge_index = new_id[batch.edge_index[:, edge_idx]]
    graph_of_atom = batch.batch[atom_idx]
    if drop_empty_graphs:
        present = torch.zeros(batch.num_graphs, dtype=torch.bool, device=device)
        present[graph_of_atom] = True
        graph_idx = present.nonzero().squeeze(1)
        graph_of_atom = (torch.cumsum(present.long(), 0) - 1)[graph_of_atom]
    else:
        graph_idx = torch.arange(batch.num_graphs, device=device)
    sub = GraphBatch(
        x=batch.x[atom_idx],
        edge_index=edge_index,
        edge_attr=batch.edge_attr[edge_idx],
        batch=graph_of_atom,
        num_graphs=int(graph_idx.shape[0]),
        y=None if batch.y is None else batch.y[graph_idx],
        index=None if batch.index is None else batch.index[graph_idx],
    )
    return Subgraph(sub, atom_idx, edge_idx, graph_idx)


# ---------------------------------------------------------------- masking
def mask_bond_token(spec: FeaturizerSpec) -> tuple[int, ...]:
    """Bond feature row written over masked bonds.

    ``hu2019``: (5, 0) as pretrain-gnns (type -> mask token 5, direction 0). ``ogb`` reserves
    one extra index per bond column for the mask / self-loop token, so it is that row.
    """
    return HU2019_MASK_BOND if spec.name == "hu2019" else tuple(spec.self_loop_bond)


class MaskedBatch(NamedTuple):
    """Result of :func:`mask_atoms`: the masked copy of the batch and the prediction targets."""

    batch: GraphBatch
    """copy of the input with masked atom rows (and bond rows) set to the mask tokens"""
    atom_idx: torch.Tensor
    """(n_masked,) masked atom indices in the batch, ascending"""
    atom_labels: torch.Tensor
    """(n_masked, n_atom_features) the original feature rows of those atoms (type: column 0)"""
    edge_idx: torch.Tensor | None = None
    """(n_masked_bonds,) one directed edge (src < dst) per masked bond; None without mask_edge"""
    edge_labels: torch.Tensor | None = None
    """(n_masked_bonds, n_bond_features) original rows of those bonds; None without mask_edge"""


def apply_atom_mask(
    batch: GraphBatch,
    atom_idx: torch.Tensor,
    featurizer: str | FeaturizerSpec = "hu2019",
    mask_edge: bool = False,
) -> MaskedBatch:
    """Mask the given atoms (and, with ``mask_edge``, every bond touching one of them).

    Masked atoms get the featuriser's mask row (``hu2019``: (119, 0), pretrain-gnns'
    ``[num_atom_type, 0]``). With ``mask_edge`` both directions of each incident bond get
    :func:`mask_bond_token`, and one label per bond is returned, taken at its ``src < dst``
    direction (pretrain-gnns takes every 2nd incident edge, relying on PyG's pair order, which
    our ``edge_index`` does not have).
    """
    spec = get_featurizer(featurizer) if isinstance(featurizer, str) else featurizer
    atom_idx = atom_idx.to(device=batch.x.device, dtype=torch.long)
    x = batch.x.clone()
    atom_labels = batch.x[atom_idx]
    x[atom_idx] = torch.tensor(spec.mask_atom, dtype=x.dtype, device=x.device)
    edge_attr, edge_idx, edge_labels = batch.edge_attr, None, None
    if mask_edge:
        is_masked = torch.zeros(batch.x.shape[0], dtype=torch.bool, device=x.device)
        is_masked[atom_idx] = True
        src, dst = batch.edge_index[0], batch.edge_index[1]
        incident = is_masked[src] | is_masked[dst]
        edge_idx = (incident & (src < dst)).nonzero().squeeze(1)
        edge_labels = batch.edge_attr[edge_idx]
        edge_attr = batch.edge_attr.clone()
        edge_attr[incident] = torch.tensor(
            mask_bond_token(spec), dtype=edge_attr.dtype, device=edge_attr.device
        )
    out = GraphBatch(
        x=x,
        edge_index=batch.edge_index,
        edge_attr=edge_attr,
        batch=batch.batch,
        num_graphs=batch.num_graphs,
        y=batch.y,
        index=batch.index,
    )
    return MaskedBatch(out, atom_idx, atom_labels, edge_idx, edge_labels)


def mask_atoms(
    batch: GraphBatch,
    ratio: float = 0.15,
    generator: torch.Generator | None = None,
    featurizer: str | FeaturizerSpec = "hu2019",
    mask_edge: bool = False,
) -> MaskedBatch:
    """Mask ``int(n_atoms * ratio + 1)`` random atoms per graph (pretrain-gnns ``MaskAtom``).

    Unpacks as ``masked_batch, atom_idx, atom_labels, edge_idx, edge_labels``; the edge fields
    are None unless ``mask_edge``. The input batch is left untouched.
    """
    counts = segment_counts(batch.batch, batch.num_graphs)
    atom_idx = sample_per_graph(
        batch.batch, batch.num_graphs, num_to_mask(counts, ratio), generator
    )
    return apply_atom_mask(batch, atom_idx, featurizer, mask_edge)
