"""InfoGraph: local-global mutual information, as GraphMVP's ``pretrain_IG.py``.

The graph summary is ``s = sigmoid(mean-pool(h))``; a bilinear discriminator
``D(h_i, s) = s^T W h_i`` scores every atom against its own molecule's summary (positive) and
against the next molecule's summary in the batch (negative, a cyclic shift by one, so never
its own). Loss = BCE(positives, 1) + BCE(negatives, 0) over all atoms: maximising a
Jensen-Shannon-style bound on the mutual information between node and graph representations.

This is the estimator GraphMVP's InfoGraph row used (and pretrain-gnns' "infomax"). The
original InfoGraph (Sun et al. 2020) adds MLP encoders for both sides and contrasts every
atom with every graph of the batch; ``neg_samples > 1`` uses more shifted summaries.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from fewmol.data.collate import GraphBatch
from fewmol.models.heads import global_pool
from fewmol.pretrain.methods._common import Method2D, binary_accuracy, zero_loss


class InfoGraph(Method2D):
    """Bilinear node-vs-summary discriminator and its BCE loss.

    Args:
        featurizer: featuriser name (recorded).
        dim: width of the encoder's node embeddings.
        neg_samples: shifted summaries per atom (default 1, as GraphMVP); capped at
            ``num_graphs - 1`` in a batch.
        pooling: readout of the summary (default ``mean``, as GraphMVP).
    """

    name: ClassVar[str] = "infograph"

    def __init__(
        self,
        featurizer: str = "hu2019",
        dim: int = 300,
        neg_samples: int = 1,
        pooling: str = "mean",
    ):
        super().__init__()
        if neg_samples < 1:
            raise ValueError(f"neg_samples must be >= 1, got {neg_samples}")
        self.hparams: dict[str, Any] = {
            "featurizer": featurizer,
            "dim": dim,
            "neg_samples": neg_samples,
            "pooling": pooling,
        }
        self.neg_samples, self.pooling = neg_samples, pooling
        self.weight = nn.Parameter(torch.empty(dim, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform(-1/sqrt(dim), 1/sqrt(dim)), as PyG's ``uniform`` used by GraphMVP."""
        bound = 1.0 / math.sqrt(self.weight.shape[0])
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(
        self,
        encoder: nn.Module,
        batch: GraphBatch,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Encode, score atoms against own / shifted summaries, return (BCE loss, logs)."""
        h = encoder(batch.x, batch.edge_index, batch.edge_attr)
        g = batch.num_graphs
        if g < 2:  # no other molecule to draw a negative summary from
            return zero_loss(h, self.weight), {"n_atoms": float(h.shape[0])}
        summary = torch.sigmoid(global_pool(h, batch.batch, g, self.pooling))
        projected = summary @ self.weight  # (g, dim): s^T W for every molecule
        pos = (h * projected[batch.batch]).sum(1)
        shifts = [1 + i % (g - 1) for i in range(self.neg_samples)]
        neg = torch.cat([(h * projected[(batch.batch + s) % g]).sum(1) for s in shifts])
        loss_pos = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
        loss_neg = F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))
        logs = {
            "loss_pos": float(loss_pos.item()),
            "loss_neg": float(loss_neg.item()),
            "acc": binary_accuracy(pos, neg),
            "n_atoms": float(h.shape[0]),
        }
        return loss_pos + loss_neg, logs

    def extra_repr(self) -> str:
        return f"neg_samples={self.neg_samples}, pooling={self.pooling}"
