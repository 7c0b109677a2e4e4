"""GraphCL (You et al. 2020): contrast two augmented views of each molecule.

Every molecule draws an augmentation pair ``(a1, a2)`` from ``aug_prob`` over the 25 ordered
pairs of :data:`~fewmol.pretrain.augment.AUGMENTATIONS` (uniform for GraphCL, as GraphMVP's
``pretrain_GraphCL.py`` with ``aug_mode='sample'``); view 1 applies ``a1``, view 2 ``a2``
(:func:`~fewmol.pretrain.augment.augment`, strength 0.2). Both views go through the encoder,
mean pooling and a projection head (Linear-ReLU-Linear); with cosine similarities
``s_ij = cos(z1_i, z2_j) / T`` (T = 0.1) the loss is GraphCL's

    L = mean_i [ -s_ii + log sum_{j != i} exp(s_ij) ]

(its NT-Xent variant: one direction, the positive left out of the denominator), computed
with ``logsumexp`` instead of GraphCL's ``exp`` then ``log``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from fewmol.chem.featurize import get_featurizer
from fewmol.data.collate import GraphBatch
from fewmol.models.heads import global_pool
from fewmol.pretrain.augment import AUGMENTATIONS, NUM_PAIRS, augment, sample_pairs
from fewmol.pretrain.methods._common import Method2D, projection_head, zero_loss


def graphcl_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """GraphCL's contrastive loss between row-aligned projections (n, d) of two views."""
    sim = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T / temperature
    n = sim.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=sim.device)
    others = torch.logsumexp(sim.masked_fill(eye, float("-inf")), dim=1)
    return (others - sim.diagonal()).mean()


class GraphCL(Method2D):
    """Two augmented views, a projection head and GraphCL's contrastive loss.

    Args:
        featurizer: featuriser name (mask token, bond vocabulary of added bonds).
        dim: width of the encoder's node embeddings.
        aug_strength: fraction of atoms / bonds each augmentation changes (default 0.2).
        temperature: T of the cosine similarities (default 0.1).
        pooling: graph readout before the projection head (default ``mean``).

    ``aug_prob`` (buffer, 25 values, uniform) is the distribution of augmentation pairs;
    JOAO (:class:`~fewmol.pretrain.methods.joao.JOAO`) learns it.
    """

    name: ClassVar[str] = "graphcl"

    def __init__(
        self,
        featurizer: str = "hu2019",
        dim: int = 300,
        aug_strength: float = 0.2,
        temperature: float = 0.1,
        pooling: str = "mean",
    ):
        super().__init__()
        if not 0.0 <= aug_strength < 1.0:
            raise ValueError(f"aug_strength must be in [0, 1), got {aug_strength}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.spec = get_featurizer(featurizer)
        self.hparams: dict[str, Any] = {
            "featurizer": featurizer,
            "dim": dim,
            "aug_strength": aug_strength,
            "temperature": temperature,
            "pooling": pooling,
        }
        self.aug_strength, self.temperature, self.pooling = aug_strength, temperature, pooling
        self.projection = projection_head(dim)
        self.register_buffer("aug_prob", torch.full((NUM_PAIRS,), 1.0 / NUM_PAIRS))

    def views(
        self,
        batch: GraphBatch,
        pairs: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[GraphBatch, GraphBatch]:
        """The two augmented views of ``batch`` for pair ids ``pairs`` (num_graphs,)."""
        n_aug = len(AUGMENTATIONS)
        view1 = augment(batch, pairs // n_aug, self.aug_strength, generator, self.spec)
        view2 = augment(batch, pairs % n_aug, self.aug_strength, generator, self.spec)
        return view1, view2

    def project(self, encoder: nn.Module, view: GraphBatch) -> torch.Tensor:
        """Pooled, projected representation (num_graphs, dim) of one view."""
        h = encoder(view.x, view.edge_index, view.edge_attr)
        return self.projection(global_pool(h, view.batch, view.num_graphs, self.pooling))

    def pair_loss(
        self,
        encoder: nn.Module,
        batch: GraphBatch,
        pairs: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Loss for given augmentation pairs, and the two projections (for accuracy)."""
        view1, view2 = self.views(batch, pairs, generator)
        z1, z2 = self.project(encoder, view1), self.project(encoder, view2)
        return graphcl_loss(z1, z2, self.temperature), z1, z2

    def forward(
        self,
        encoder: nn.Module,
        batch: GraphBatch,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Draw a pair per molecule, augment, encode, return (contrastive loss, logs)."""
        if batch.num_graphs < 2:  # no other molecule to contrast with
            return zero_loss(*self.parameters()), {}
        pairs = sample_pairs(self.aug_prob, batch.num_graphs, generator)
        loss, z1, z2 = self.pair_loss(encoder, batch, pairs, generator)
        with torch.no_grad():
            sim = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T
            acc = (sim.argmax(1) == torch.arange(sim.shape[0], device=sim.device)).float().mean()
        return loss, {"acc": float(acc.item())}

    def extra_repr(self) -> str:
        return f"aug_strength={self.aug_strength}, temperature={self.temperature}"
