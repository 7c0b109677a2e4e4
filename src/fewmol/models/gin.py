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

from fewmol.models.dropout import dropout

#: Largest product of the column vocabularies embedded through one summed table (bonds: 18 rows
#: for hu2019, 60 for OGB; hu2019 atoms 480); above it (OGB atoms) the columns are embedded one
#: by one.
COMBINED_TABLE_MAX = 4096


class CategoricalEmbedding(nn.Module):
    """Sum of one embedding per categorical feature column (OGB's AtomEncoder/BondEncoder).

    When the columns' vocabularies multiply to at most :data:`COMBINED_TABLE_MAX` rows, the
    sum is taken once over the tables (every combination of values, a few thousand rows at
    most) and each input row looks up its combination: one gather per call instead of one per
    column plus the adds, and the same for their backward (a GIN fine-tuning step in bf16:
    benchmarks/results/speed.md). The parameters are the per-column tables either way.

    Shapes: input (n, n_features) int64 -> output (n, dim).
    """

    def __init__(self, dims: Sequence[int], dim: int):
        super().__init__()
        self.dims = tuple(int(d) for d in dims)
        self.embeddings = nn.ModuleList(nn.Embedding(d, dim) for d in self.dims)
        self.combined = len(self.dims) > 1 and math.prod(self.dims) <= COMBINED_TABLE_MAX
        self.register_buffer("_dims", torch.tensor(self.dims), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform initialisation, as pretrain-gnns."""
        for emb in self.embeddings:
            nn.init.xavier_uniform_(emb.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed and sum the feature columns."""
        if not self.combined:
            out = self.embeddings[0](x[:, 0])
            for k in range(1, len(self.embeddings)):
                out = out + self.embeddings[k](x[:, k])
            return out
        if x.device.type == "cpu" and x.numel():
            # a combined index would alias another combination instead of failing (on a GPU
            # the check would cost a host sync per call; featurisers keep to their vocabularies)
            out_of_range = (x < 0) | (x >= self._dims)
            if bool(out_of_range.any()):
                bad = int(out_of_range.any(0).nonzero()[0])
                raise IndexError(
                    f"feature column {bad} has an index outside its vocabulary of {self.dims[bad]}"
                )
        table, idx = self.embeddings[0].weight, x[:, 0]
        for k in range(1, len(self.dims)):
            w = self.embeddings[k].weight
            table = (table.unsqueeze(1) + w.unsqueeze(0)).reshape(-1, w.shape[1])
            idx = idx * self.dims[k] + x[:, k]
        return table.index_select(0, idx)


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
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor
    ) -> torch.Tensor:
        """Message passing with sum aggregation, then the MLP."""
        src, dst = edge_index[0], edge_index[1]
        msg = x.index_select(0, src) + self.edge_embedding(edge_attr)
        agg = x + self.edge_embedding(self.self_loop_attr)
        agg = agg.index_add(0, dst, msg)
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
        for i, (layer, bn) in enumerate(zip(self.layers, self.batch_norms)):
            h = bn(layer(h, edge_index, edge_attr))
            if i < self.num_layers - 1:
                h = torch.relu(h)
            h = dropout(h, self.dropout, self.training)
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
