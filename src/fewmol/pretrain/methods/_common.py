"""Small batched helpers shared by the 2D pre-training methods (no per-graph Python loops)."""

from __future__ import annotations

import torch
from torch import nn

from fewmol.data.collate import GraphBatch


class Method2D(nn.Module):
    """Base of the 2D methods: ``forward(encoder, batch, generator)`` is their loss."""

    def loss(
        self,
        encoder: nn.Module,
        batch: GraphBatch,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The common 2D-method interface: (loss tensor, dict of floats)."""
        return self(encoder, batch, generator)


def accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the target (0.0 for no rows)."""
    if target.numel() == 0:
        return 0.0
    return float((logits.detach().argmax(1) == target).float().mean().item())


def binary_accuracy(pos: torch.Tensor, neg: torch.Tensor) -> float:
    """Fraction of positive logits > 0 and negative logits < 0, over both sets."""
    n = pos.numel() + neg.numel()
    if n == 0:
        return 0.0
    return float(((pos.detach() > 0).sum() + (neg.detach() < 0).sum()).item()) / n


def zero_loss(*tensors: torch.Tensor) -> torch.Tensor:
    """A zero that keeps a graph to the given tensors, so ``backward()`` still works."""
    return torch.stack([t.sum() for t in tensors]).sum() * 0.0


def segment_logsumexp(values: torch.Tensor, index: torch.Tensor, num_segments: int) -> torch.Tensor:
    """``log(sum(exp(values)))`` per segment; ``-inf`` for empty segments.

    Shapes: values (n,), index (n,) segment of each value -> (num_segments,).
    """
    neg_inf = torch.full((num_segments,), float("-inf"), dtype=values.dtype, device=values.device)
    peak = neg_inf.scatter_reduce(0, index, values.detach(), "amax", include_self=True)
    safe = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
    sums = torch.zeros_like(neg_inf).index_add(0, index, torch.exp(values - safe[index]))
    return torch.log(sums) + safe


def projection_head(dim: int, out_dim: int | None = None) -> nn.Sequential:
    """Linear-ReLU-Linear, as GraphCL's / GraphLoG's projection heads."""
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, out_dim or dim))
