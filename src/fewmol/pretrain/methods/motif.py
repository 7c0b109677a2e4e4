"""G-Motif: GROVER's graph-level motif prediction on a GIN, as GraphMVP's ``pretrain_Motif.py``.

Predict, from the mean-pooled node embeddings, which of RDKit's 85 functional groups
(:data:`~fewmol.chem.motifs.FUNCTIONAL_GROUPS`, the ``fr_*`` fragment counts > 0) the molecule
contains: a linear head and binary cross-entropy over all 85 labels (multi-label).

The labels are computed once per molecule with RDKit and cached beside the features
(:func:`~fewmol.data.store.motif_labels_cached`); they reach the method as the batch's
per-molecule targets ``batch.y`` (n_molecules, 85), like fine-tuning labels.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from fewmol.chem.motifs import FUNCTIONAL_GROUPS
from fewmol.data.collate import GraphBatch
from fewmol.errors import InvalidInputError
from fewmol.models.heads import global_pool
from fewmol.pretrain.methods._common import Method2D


class GMotif(Method2D):
    """Multi-label functional-group head and its BCE loss.

    Args:
        dim: width of the encoder's node embeddings.
        num_motifs: number of labels (85 RDKit fragments).
        pooling: graph readout (default ``mean``, as GraphMVP).
    """

    name: ClassVar[str] = "g-motif"

    def __init__(
        self, dim: int = 300, num_motifs: int = len(FUNCTIONAL_GROUPS), pooling: str = "mean"
    ):
        super().__init__()
        self.hparams: dict[str, Any] = {"dim": dim, "num_motifs": num_motifs, "pooling": pooling}
        self.num_motifs, self.pooling = num_motifs, pooling
        self.head = nn.Linear(dim, num_motifs)

    def forward(
        self,
        encoder: nn.Module,
        batch: GraphBatch,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Encode, pool, return (BCE over the motif labels in ``batch.y``, logs)."""
        if batch.y is None or batch.y.shape != (batch.num_graphs, self.num_motifs):
            got = None if batch.y is None else tuple(batch.y.shape)
            raise InvalidInputError(
                f"g-motif needs per-molecule motif labels of shape "
                f"({batch.num_graphs}, {self.num_motifs}) in batch.y, got {got}"
            )
        h = encoder(batch.x, batch.edge_index, batch.edge_attr)
        logits = self.head(global_pool(h, batch.batch, batch.num_graphs, self.pooling))
        target = batch.y.to(logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        with torch.no_grad():
            acc = ((logits > 0) == (target > 0.5)).float().mean()
        return loss, {"acc": float(acc.item()), "positive_rate": float(target.mean().item())}

    def extra_repr(self) -> str:
        return f"num_motifs={self.num_motifs}, pooling={self.pooling}"
