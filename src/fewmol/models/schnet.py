"""The SchNet 3D encoder used by GraphMVP, built from PyG's SchNet blocks.

PyG's ``SchNet`` cannot be used as is: its default interaction graph needs pyg-lib (not
installed, DESIGN §7) and its ``forward`` always projects to one scalar per graph, while
GraphMVP needs the pooled hidden representation. So this module composes PyG's
``InteractionBlock`` / ``GaussianSmearing`` / ``ShiftedSoftplus`` with a pure-torch
:func:`radius_graph` and GraphMVP's output MLP (hidden -> hidden, no scalar head).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch_geometric.nn.models.schnet import GaussianSmearing, InteractionBlock, ShiftedSoftplus

from fewmol.models.heads import global_pool

#: Atomic numbers 1..118 index the embedding directly; row 0 is a zero padding row.
NUM_ELEMENTS = 119


def radius_graph(
    pos: torch.Tensor,
    batch: torch.Tensor | None = None,
    cutoff: float = 10.0,
    max_neighbors: int = 32,
) -> torch.Tensor:
    """Edges between atoms of the same graph closer than ``cutoff`` (pure torch, no pyg-lib).

    Each atom ``i`` receives edges from at most ``max_neighbors`` of its nearest other atoms
    ``j`` with ``|pos_j - pos_i| < cutoff``; no self loops and no edges across graphs. Only
    the pairs inside each graph are formed (sum of n_g^2, no padding to the largest graph), so
    memory stays proportional to the batch's real pairs. ``batch`` need not be sorted.

    Shapes: pos (n_atoms, 3), batch (n_atoms,) -> edge_index (2, n_edges), rows
    (source/neighbour ``j``, target/centre ``i``) as PyG's ``radius_graph`` (flow
    source_to_target), so messages ``x_j`` aggregate at ``edge_index[1]``.
    """
    if max_neighbors < 1:
        raise ValueError(f"max_neighbors must be >= 1, got {max_neighbors}")
    n = pos.shape[0]
    device = pos.device
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=device)
    if n == 0:
        return torch.empty(2, 0, dtype=torch.long, device=device)
    with torch.no_grad():
        # Atoms grouped by graph (stable, so a sorted batch keeps its order).
        order = torch.argsort(batch, stable=True)
        counts = torch.bincount(batch)
        starts = torch.cumsum(counts, 0) - counts  # first slot of each graph in `order`
        # Every atom i is paired with all atoms of its own graph: counts[batch[i]] pairs.
        per_atom = counts[batch]
        centre = torch.repeat_interleave(torch.arange(n, device=device), per_atom)
        first_pair = torch.cumsum(per_atom, 0) - per_atom
        t = torch.arange(centre.shape[0], device=device) - first_pair[centre]
        nbr = order[starts[batch[centre]] + t]

        dist = (pos[nbr] - pos[centre]).norm(dim=-1)
        keep = (nbr != centre) & (dist < cutoff)
        centre, nbr, dist = centre[keep], nbr[keep], dist[keep]

        # The k-nearest cut only matters when some atom can have more than k neighbours.
        if int(counts.max()) - 1 > max_neighbors:
            # Sort by (centre, distance): stable sort by distance, then stable by centre.
            by_dist = torch.argsort(dist, stable=True)
            perm = by_dist[torch.argsort(centre[by_dist], stable=True)]
            centre, nbr = centre[perm], nbr[perm]
            deg = torch.bincount(centre, minlength=n)
            rank = (
                torch.arange(centre.shape[0], device=device) - (torch.cumsum(deg, 0) - deg)[centre]
            )
            sel = rank < max_neighbors
            centre, nbr = centre[sel], nbr[sel]
    return torch.stack([nbr, centre], dim=0)


def edge_pairs(
    src: torch.Tensor, dst: torch.Tensor, n_atoms: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The unordered atom pairs of directed edges, and each edge's pair.

    Returns ``(a, b, pair)``: pair ``k`` joins atoms ``a[k] < b[k]``, and edge ``e`` runs
    between the atoms of pair ``pair[e]`` (either way). A filter depends on the distance only,
    so one filter per pair serves both directions: half the filter network's work in a radius
    graph, where nearly every edge has its reverse (the k-nearest cut can drop one side; such
    a pair then serves its one edge).
    """
    lo, hi = torch.minimum(src, dst), torch.maximum(src, dst)
    keys, pair = torch.unique(lo * n_atoms + hi, return_inverse=True)
    return keys // n_atoms, keys % n_atoms, pair


def _interaction(
    block: InteractionBlock,
    h: torch.Tensor,
    src: torch.Tensor,
    dst: torch.Tensor,
    cutoff_weight: torch.Tensor,
    edge_attr: torch.Tensor,
    pair: torch.Tensor,
) -> torch.Tensor:
    """PyG's ``InteractionBlock.forward`` on the block's own weights, filters per atom pair.

    The same function (message x_j * W(d_ij) * C(d_ij), summed at i), but ``edge_attr`` and
    ``cutoff_weight`` are given per unordered pair (:func:`edge_pairs`) and each pair's filter
    is computed once for both of its edges; under bf16 autocast the per-edge products stay in
    the filters' dtype (PyG multiplies them by a float32 cutoff) and only the sum over
    neighbours accumulates in float32 (benchmarks/results/speed.md). Without autocast it is
    PyG's float32 arithmetic, up to the order of floating-point sums in the backward pass.
    """
    conv = block.conv
    w = conv.nn(edge_attr)
    w = (w * cutoff_weight.to(w.dtype).unsqueeze(1)).index_select(0, pair)
    x = conv.lin1(h)
    msg = x.index_select(0, src) * w.to(x.dtype)
    acc = torch.promote_types(msg.dtype, torch.float32)  # bf16 messages sum in float32
    agg = msg.new_zeros((h.shape[0], msg.shape[1]), dtype=acc).index_add(0, dst, msg.to(acc))
    return block.lin(block.act(conv.lin2(agg)))


class SchNetEncoder(nn.Module):
    r"""SchNet (Schütt et al. 2017, arXiv:1706.08566) returning pooled graph embeddings.

    .. math::
        h_i^{(0)} = E[Z_i], \qquad
        h_i^{(t+1)} = h_i^{(t)} + \mathrm{Interaction}^{(t)}(h^{(t)}, \{d_{ij}\}),

        \mathrm{out}_i = W_2\,\mathrm{ssp}(W_1 h_i^{(T)}), \qquad
        z_G = \mathrm{readout}_{i \in G}\ \mathrm{out}_i,

    with continuous filters on 50 Gaussians of :math:`d_{ij}` and a cosine cutoff, as in
    PyG's ``InteractionBlock``. The output MLP maps hidden -> hidden -> ``out_channels``
    (GraphMVP's SchNet; PyG's instead ends in one scalar per atom).

    Atom embedding: indexed by the atomic number Z itself (1..118) into ``Embedding(119)``
    with row 0 as a zero padding row (PyG's convention). GraphMVP fed the pretrain-gnns index
    Z - 1; we never load their SchNet weights, so we keep the physical Z. Callers holding
    hu2019 features must pass ``x[:, 0] + 1``.

    Args:
        hidden_channels: atom state width (default 128, DESIGN §5).
        num_filters: filter width in each interaction (default 128).
        num_interactions: number of interaction blocks (default 6).
        num_gaussians: Gaussians in the distance expansion (default 50).
        cutoff: interaction radius in Å (default 10.0).
        max_neighbors: nearest neighbours kept per atom within the cutoff (default 32).
        readout: ``mean`` (GraphMVP) or ``sum`` pooling over atoms (default mean).
        out_channels: width of the returned embedding (default ``hidden_channels``); set it
            to the 2D encoder's width so the dot-product critic can compare the two views.

    Shapes: z (n_atoms,) int64, pos (n_atoms, 3), batch (n_atoms,) ->
    (num_graphs, out_channels); :meth:`atom_embeddings` -> (n_atoms, out_channels).
    """

    def __init__(
        self,
        hidden_channels: int = 128,
        num_filters: int = 128,
        num_interactions: int = 6,
        num_gaussians: int = 50,
        cutoff: float = 10.0,
        max_neighbors: int = 32,
        readout: str = "mean",
        out_channels: int | None = None,
    ):
        super().__init__()
        if readout not in ("mean", "sum"):
            raise ValueError(f"readout must be mean or sum, got {readout!r}")
        if num_interactions < 1:
            raise ValueError(f"num_interactions must be >= 1, got {num_interactions}")
        if cutoff <= 0:
            raise ValueError(f"cutoff must be > 0, got {cutoff}")
        out_channels = hidden_channels if out_channels is None else out_channels
        self.hidden_channels, self.num_filters = hidden_channels, num_filters
        self.num_interactions, self.num_gaussians = num_interactions, num_gaussians
        self.cutoff, self.max_neighbors = float(cutoff), max_neighbors
        self.readout, self.out_channels = readout, out_channels
        self.hparams = {
            "hidden_channels": hidden_channels,
            "num_filters": num_filters,
            "num_interactions": num_interactions,
            "num_gaussians": num_gaussians,
            "cutoff": self.cutoff,
            "max_neighbors": max_neighbors,
            "readout": readout,
            "out_channels": out_channels,
        }
        self.embedding = nn.Embedding(NUM_ELEMENTS, hidden_channels, padding_idx=0)
        self.distance_expansion = GaussianSmearing(0.0, self.cutoff, num_gaussians)
        self.interactions = nn.ModuleList(
            InteractionBlock(hidden_channels, num_gaussians, num_filters, self.cutoff)
            for _ in range(num_interactions)
        )
        self.lin1 = nn.Linear(hidden_channels, hidden_channels)
        self.act = ShiftedSoftplus()
        self.lin2 = nn.Linear(hidden_channels, out_channels)
        self.reset_parameters()

    @property
    def out_dim(self) -> int:
        """Width of the graph embeddings this encoder returns."""
        return self.out_channels

    def reset_parameters(self) -> None:
        """Re-initialise every parameter (PyG's SchNet scheme: Xavier weights, zero biases)."""
        self.embedding.reset_parameters()
        for block in self.interactions:
            block.reset_parameters()
        for lin in (self.lin1, self.lin2):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def atom_embeddings(
        self, z: torch.Tensor, pos: torch.Tensor, batch: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-atom states after the interactions and the output MLP (what gets pooled).

        Shapes: z (n_atoms,), pos (n_atoms, 3), batch (n_atoms,) -> (n_atoms, out_channels).
        """
        if batch is None:
            batch = torch.zeros_like(z)
        edge_index = radius_graph(pos, batch, self.cutoff, self.max_neighbors)
        src, dst = edge_index
        a, b, pair = edge_pairs(src, dst, z.shape[0])
        # Distances are recomputed outside radius_graph so gradients flow to pos.
        dist = (pos[a] - pos[b]).norm(dim=-1)
        edge_attr = self.distance_expansion(dist)
        # the cosine cutoff of the filters: the same in every block
        cutoff_weight = 0.5 * (torch.cos(dist * math.pi / self.cutoff) + 1.0)
        h = self.embedding(z)
        for block in self.interactions:
            h = h + _interaction(block, h, src, dst, cutoff_weight, edge_attr, pair)
        return self.lin2(self.act(self.lin1(h)))

    def forward(
        self,
        z: torch.Tensor,
        pos: torch.Tensor,
        batch: torch.Tensor | None = None,
        num_graphs: int | None = None,
    ) -> torch.Tensor:
        """Pooled graph embeddings (num_graphs, out_channels).

        Args:
            z: atomic numbers 1..118, shape (n_atoms,), int64.
            pos: coordinates in Å, shape (n_atoms, 3).
            batch: graph index of each atom, shape (n_atoms,); default one graph.
            num_graphs: number of graphs; default ``batch.max() + 1`` (a host sync).
        """
        if batch is None:
            batch = torch.zeros_like(z)
        h = self.atom_embeddings(z, pos, batch)
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        return global_pool(h, batch, num_graphs, self.readout)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(hidden_channels={self.hidden_channels}, "
            f"num_filters={self.num_filters}, num_interactions={self.num_interactions}, "
            f"num_gaussians={self.num_gaussians}, cutoff={self.cutoff}, "
            f"max_neighbors={self.max_neighbors}, readout={self.readout}, "
            f"out_channels={self.out_channels})"
        )
