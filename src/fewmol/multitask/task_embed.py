"""Task embeddings: one learned vector per task, refined by a GCN over the task graph.

SGNN-EBM's z_i: tasks that the relation graph links end up with similar embeddings, so a task
with few labels borrows from its neighbours. The graph enters as a sparse edge list (PyG's
``GCNConv`` with symmetric normalisation and self-loops), so the cost is linear in its edges.
"""

from __future__ import annotations

import torch
from torch import nn

from fewmol.models.dropout import dropout


class TaskGCN(nn.Module):
    """Embedding table (T, dim) followed by residual GCN layers over the task graph.

    Shapes: edge_index (2, E) with both directions of each edge, edge_weight (E,) -> (T, dim).
    """

    def __init__(self, num_tasks: int, dim: int, num_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}")
        self.num_tasks, self.dim, self.dropout = num_tasks, dim, dropout
        # PyG takes seconds to import: loaded with the first model, not with the CLI
        from torch_geometric.nn import GCNConv

        self.embedding = nn.Embedding(num_tasks, dim)
        # cached=False: the graph is a buffer of the owning module and may move between devices.
        self.convs = nn.ModuleList(
            GCNConv(dim, dim, normalize=True, add_self_loops=True) for _ in range(num_layers)
        )
        nn.init.xavier_uniform_(self.embedding.weight)

    def forward(self, edge_index: torch.Tensor, edge_weight: torch.Tensor | None) -> torch.Tensor:
        """Task embeddings after the GCN (T, dim)."""
        x = self.embedding.weight
        # GCN normalisation needs non-negative degrees; a relation's strength is its magnitude.
        w = None if edge_weight is None else edge_weight.abs()
        for k, conv in enumerate(self.convs):
            h = conv(x, edge_index, w)
            if k < len(self.convs) - 1:
                h = dropout(torch.relu(h), self.dropout, self.training)
            x = x + h  # residual: isolated tasks keep their own embedding
        return x
