"""Graph readout (pooling) and prediction heads."""

from __future__ import annotations

import torch
from torch import nn

from fewmol.models.dropout import Dropout


def global_pool(h: torch.Tensor, batch: torch.Tensor, num_graphs: int, mode: str = "mean"):
    """Pool node embeddings per graph: ``mean``, ``sum`` or ``max``.

    Shapes: h (n_atoms, d), batch (n_atoms,) -> (num_graphs, d).
    """
    out = h.new_zeros(num_graphs, h.shape[1])
    if mode == "max":
        idx = batch.unsqueeze(1).expand_as(h)
        return out.fill_(float("-inf")).scatter_reduce(0, idx, h, "amax", include_self=True)
    out = out.index_add(0, batch, h)
    if mode == "sum":
        return out
    if mode != "mean":
        raise ValueError(f"pooling must be mean, sum or max, got {mode!r}")
    counts = torch.bincount(batch, minlength=num_graphs).clamp_min(1).to(h.dtype)
    return out / counts.unsqueeze(1)


class LinearHead(nn.Module):
    """One linear layer from the graph embedding to one output per task (pretrain-gnns).

    Shapes: (n_graphs, in_dim) -> (n_graphs, n_tasks).
    """

    def __init__(self, in_dim: int, n_tasks: int):
        super().__init__()
        self.in_dim, self.n_tasks = in_dim, n_tasks
        self.linear = nn.Linear(in_dim, n_tasks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Per-task logits (classification) or standardised values (regression)."""
        return self.linear(z)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_dim}, {self.n_tasks})"


class MLPHead(nn.Module):
    """Two-layer MLP head (hidden, ReLU, dropout) for harder regression targets.

    Shapes: (n_graphs, in_dim) -> (n_graphs, n_tasks).
    """

    def __init__(self, in_dim: int, n_tasks: int, hidden: int = 300, dropout: float = 0.0):
        super().__init__()
        self.in_dim, self.n_tasks, self.hidden = in_dim, n_tasks, hidden
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(), Dropout(dropout), nn.Linear(hidden, n_tasks)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Per-task outputs."""
        return self.net(z)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_dim}, {self.hidden}, {self.n_tasks})"


class NoHead(nn.Module):
    """A head with no tasks, for a model that only embeds (a pre-trained encoder's).

    Shapes: (n_graphs, in_dim) -> (n_graphs, 0).
    """

    def __init__(self, in_dim: int):
        super().__init__()
        self.in_dim, self.n_tasks = in_dim, 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """An empty (n_graphs, 0) output."""
        return z.new_zeros((z.shape[0], 0))


class GraphPropertyModel(nn.Module):
    """Encoder -> pooling -> head; ``embed`` gives the pooled molecule embedding."""

    def __init__(self, encoder: nn.Module, head: nn.Module, pooling: str = "mean"):
        super().__init__()
        self.encoder, self.head, self.pooling = encoder, head, pooling

    def embed(self, x, edge_index, edge_attr, batch, num_graphs: int) -> torch.Tensor:
        """Pooled graph embeddings (n_graphs, encoder.out_dim)."""
        return global_pool(self.encoder(x, edge_index, edge_attr), batch, num_graphs, self.pooling)

    def forward(self, x, edge_index, edge_attr, batch, num_graphs: int) -> torch.Tensor:
        """Head outputs (n_graphs, n_tasks)."""
        return self.head(self.embed(x, edge_index, edge_attr, batch, num_graphs))
