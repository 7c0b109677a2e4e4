"""The GIN encoder of Hu et al. 2019 ("Strategies for Pre-training Graph Neural Networks").

Written out rather than taken from PyG's ``GINEConv``: the pretrain-gnns layer adds the edge
embedding to the neighbour state without a ReLU and has no (1 + eps) self term (the self-loop
edge plays that role), so only this form can load pretrain-gnns / GraphMVP weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

#: Bond vocabularies up to this many feature combinations (hu2019: 6 x 3, ogb: 5 x 6 x 2) take
#: the per-node path of :func:`edge_type_counts`; larger ones embed every edge.
MAX_EDGE_TYPES = 1024


class CategoricalEmbedding(nn.Module):
    """Sum of one embedding per categorical feature column (OGB's AtomEncoder/BondEncoder).

    Shapes: input (n, n_features) int64 -> output (n, dim).
    """

    def __init__(self, dims: Sequence[int], dim: int):
        super().__init__()
        self.dims = tuple(int(d) for d in dims)
        self.embeddings = nn.ModuleList(nn.Embedding(d, dim) for d in self.dims)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform initialisation, as pretrain-gnns."""
        for emb in self.embeddings:
            nn.init.xavier_uniform_(emb.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed and sum the feature columns."""
        out = self.embeddings[0](x[:, 0])
        for k in range(1, len(self.embeddings)):
            out = out + self.embeddings[k](x[:, k])
        return out

    def combined_index(self, x: torch.Tensor) -> torch.Tensor:
        """Mixed-radix index of each row's category tuple into :meth:`combined_table`."""
        return combined_index(x, self.dims)

    def combined_table(self) -> torch.Tensor:
        """(prod(dims), dim): the embedding of every category tuple (row = combined index)."""
        table = self.embeddings[0].weight
        for emb in self.embeddings[1:]:
            table = (table[:, None, :] + emb.weight[None, :, :]).reshape(-1, table.shape[-1])
        return table


def combined_index(x: torch.Tensor, dims: Sequence[int]) -> torch.Tensor:
    """(n, k) categorical rows -> (n,) mixed-radix indices (first column most significant)."""
    idx = x[:, 0]
    for k in range(1, len(dims)):
        idx = idx * dims[k] + x[:, k]
    return idx


def edge_type_counts(
    edge_index: torch.Tensor,
    edge_attr: torch.Tensor,
    num_nodes: int,
    bond_dims: Sequence[int],
    self_loop_bond: Sequence[int],
) -> torch.Tensor:
    """(num_nodes, prod(bond_dims)) float32: incoming edges of each bond type, self loop included.

    The sum of a node's incoming edge embeddings is then ``counts @ table`` for any layer's
    bond table, so the encoder counts once per batch instead of embedding every edge in every
    layer (same sum, less memory traffic, no per-edge embedding backward).
    """
    n_types = math.prod(bond_dims)
    vocab = torch.as_tensor(list(bond_dims), device=edge_attr.device)
    if edge_attr.numel() and ((edge_attr < 0) | (edge_attr >= vocab)).any():
        # an embedding lookup would fail here; a count would land in another type's column
        raise IndexError(f"bond feature outside its vocabulary {list(bond_dims)}")
    flat = edge_index[1] * n_types + combined_index(edge_attr, bond_dims)
    counts = torch.bincount(flat, minlength=num_nodes * n_types).view(num_nodes, n_types)
    counts = counts.to(torch.float32)
    loop = 0
    for value, d in zip(self_loop_bond, bond_dims):
        loop = loop * d + value
    counts[:, loop] += 1.0
    return counts


class GINLayer(nn.Module):
    r"""One pretrain-gnns GIN layer with edge features.

    .. math:: h_i' = \mathrm{MLP}\big(h_i + e_{\text{self}} + \sum_{j \in N(i)} (h_j + e_{ji})\big)

    The self-loop term :math:`h_i + e_{\text{self}}` is the self-loop edge pretrain-gnns adds
    to every node; adding it directly avoids concatenating N extra edges per layer.

    Shapes: x (n_atoms, dim), edge_index (2, n_edges), edge_attr (n_edges, n_bond_features).
    """

    def __init__(self, dim: int, bond_dims: Sequence[int], self_loop_bond: Sequence[int]):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))
        self.edge_embedding = CategoricalEmbedding(bond_dims, dim)
        self.register_buffer(
            "self_loop_attr", torch.tensor([list(self_loop_bond)], dtype=torch.long), False
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the MLP and edge embeddings."""
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                m.reset_parameters()
        self.edge_embedding.reset_parameters()

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
        edge_counts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Message passing with sum aggregation, then the MLP.

        ``edge_counts`` (from :func:`edge_type_counts`, self loop included) replaces the
        per-edge embeddings by one small product with this layer's bond table.
        """
        src, dst = edge_index[0], edge_index[1]
        if edge_counts is None:
            msg = x.index_select(0, src) + self.edge_embedding(edge_attr)
            agg = x + self.edge_embedding(self.self_loop_attr)
            return self.mlp(agg.index_add(0, dst, msg))
        # float32 like the embeddings it replaces (autocast would round it to bfloat16)
        with torch.autocast(x.device.type, enabled=False):
            table = self.edge_embedding.combined_table()
            edge_sum = edge_counts.to(table.dtype) @ table
        agg = x + edge_sum
        agg = agg.index_add(0, dst, x.index_select(0, src).to(agg.dtype))
        return self.mlp(agg)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim})"


class GINEncoder(nn.Module):
    """Stack of GIN layers with batch norm (Hu et al. 2019), returning node embeddings.

    Args:
        atom_dims: vocabulary size of each atom feature column (featuriser ``atom_dims``).
        bond_dims: vocabulary size of each bond feature column.
        self_loop_bond: bond feature values used for the self-loop edge.
        num_layers: number of GIN layers (default 5).
        dim: hidden size (default 300).
        dropout: dropout after each layer (default 0.0 for pre-training, 0.5 fine-tuning).
        jk: ``last`` | ``sum`` | ``concat`` | ``max`` jumping-knowledge mode (default last).

    Shapes: x (n_atoms, n_atom_features) int64 -> (n_atoms, dim) (``concat``: dim*(L+1)).
    """

    def __init__(
        self,
        atom_dims: Sequence[int],
        bond_dims: Sequence[int],
        self_loop_bond: Sequence[int],
        num_layers: int = 5,
        dim: int = 300,
        dropout: float = 0.0,
        jk: str = "last",
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if jk not in ("last", "sum", "concat", "max"):
            raise ValueError(f"jk must be last, sum, concat or max, got {jk!r}")
        self.hparams = {
            "atom_dims": list(atom_dims),
            "bond_dims": list(bond_dims),
            "self_loop_bond": list(self_loop_bond),
            "num_layers": num_layers,
            "dim": dim,
            "dropout": dropout,
            "jk": jk,
        }
        self.num_layers, self.dim, self.dropout, self.jk = num_layers, dim, dropout, jk
        self.atom_embedding = CategoricalEmbedding(atom_dims, dim)
        self.layers = nn.ModuleList(
            GINLayer(dim, bond_dims, self_loop_bond) for _ in range(num_layers)
        )
        self.batch_norms = nn.ModuleList(nn.BatchNorm1d(dim) for _ in range(num_layers))
        self.reset_parameters()

    @property
    def out_dim(self) -> int:
        """Width of the node embeddings this encoder returns."""
        return self.dim * (self.num_layers + 1) if self.jk == "concat" else self.dim

    def reset_parameters(self) -> None:
        """Re-initialise every sub-module."""
        self.atom_embedding.reset_parameters()
        for layer, bn in zip(self.layers, self.batch_norms):
            layer.reset_parameters()
            bn.reset_parameters()

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor
    ) -> torch.Tensor:
        """Node embeddings after the last layer (or combined per ``jk``)."""
        h = self.atom_embedding(x)
        hs = [h]
        counts = None
        bond_dims, self_loop = self.hparams["bond_dims"], self.hparams["self_loop_bond"]
        if math.prod(bond_dims) <= MAX_EDGE_TYPES:
            counts = edge_type_counts(edge_index, edge_attr, x.shape[0], bond_dims, self_loop)
        for i, (layer, bn) in enumerate(zip(self.layers, self.batch_norms)):
            h = bn(layer(h, edge_index, edge_attr, counts))
            if i < self.num_layers - 1:
                h = torch.relu(h)
            h = nn.functional.dropout(h, self.dropout, self.training)
            hs.append(h)
        if self.jk == "last":
            return h
        if self.jk == "concat":
            return torch.cat(hs, dim=1)
        stacked = torch.stack(hs[1:], dim=0)
        return stacked.sum(0) if self.jk == "sum" else stacked.max(0).values

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(layers={self.num_layers}, dim={self.dim}, "
            f"dropout={self.dropout}, jk={self.jk})"
        )
