"""JOAO (You et al. 2021): GraphCL with augmentation pairs chosen by min-max optimisation.

Training minimises GraphCL's loss with each molecule's augmentation pair drawn from
``aug_prob``; after every epoch the pair distribution takes a projected gradient *ascent*
step on the same loss (the "max" player), as GraphMVP's ``pretrain_JOAO.py``:

    b = p + (l - gamma * (p - 1/25)),   p <- projection of b onto the probability simplex

where ``l[k]`` is the mean GraphCL loss of pair ``k`` applied to every molecule, measured
without gradients on about ``eval_fraction`` (10%) of the epoch's batches, and ``gamma``
(0.1) pulls ``p`` toward uniform. Pairs that are hard for the current encoder get drawn more.

Differences from GraphMVP's code, on purpose: the 10% are every 10th batch of the epoch just
trained (GraphMVP re-reads the first 10% of a freshly shuffled loader); batch-norm running
statistics are restored after that evaluation (GraphMVP's evaluation runs in training mode
and leaves them moved by 25 x 10% extra batches); the simplex projection is exact (GraphMVP
bisects to a tolerance of 0.01 and renormalises). Under DDP the pair losses are averaged over
ranks, so every rank takes the same step.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from fewmol.data.collate import GraphBatch
from fewmol.pretrain.augment import NUM_PAIRS
from fewmol.pretrain.methods.graphcl import GraphCL


def project_to_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``v`` onto {p >= 0, sum p = 1} (sort-based, exact)."""
    v = np.asarray(v, dtype=np.float64)
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    k = np.arange(1, v.size + 1)
    rho = np.nonzero(u - css / k > 0)[0][-1]
    return np.maximum(v - css[rho] / (rho + 1.0), 0.0)


def joao_update(prob: np.ndarray, pair_losses: np.ndarray, gamma: float) -> np.ndarray:
    """One projected gradient-ascent step of the augmentation distribution (JOAO, beta = 1)."""
    prob = np.asarray(prob, dtype=np.float64)
    n = prob.size
    b = prob + (np.asarray(pair_losses, dtype=np.float64) - gamma * (prob - 1.0 / n))
    p = project_to_simplex(b)
    return p / p.sum()


def _batchnorm_state(module: nn.Module) -> list[tuple[nn.Module, dict[str, torch.Tensor]]]:
    """Copies of every batch-norm layer's running statistics, to restore later."""
    return [
        (m, {k: v.clone() for k, v in m.named_buffers(recurse=False) if v is not None})
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]


class JOAO(GraphCL):
    """GraphCL whose augmentation-pair distribution is updated after every epoch.

    Args: those of :class:`~fewmol.pretrain.methods.graphcl.GraphCL`, plus
        gamma: pull toward the uniform distribution (default 0.1, GraphMVP's ``--gamma``).
        eval_fraction: share of an epoch's batches kept to measure the pair losses (0.1).

    A training loop calls :meth:`epoch_end` after each epoch's last optimisation step
    (``Pretrain2DModule`` does).
    """

    name: ClassVar[str] = "joao"
    # the epoch-end update needs every batch kept since the epoch began, which a checkpoint
    # does not hold: JOAO checkpoints at epoch ends only
    mid_epoch_resume: ClassVar[bool] = False

    def __init__(
        self,
        featurizer: str = "hu2019",
        dim: int = 300,
        aug_strength: float = 0.2,
        temperature: float = 0.1,
        pooling: str = "mean",
        gamma: float = 0.1,
        eval_fraction: float = 0.1,
    ):
        super().__init__(featurizer, dim, aug_strength, temperature, pooling)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        if not 0.0 < eval_fraction <= 1.0:
            raise ValueError(f"eval_fraction must be in (0, 1], got {eval_fraction}")
        self.hparams.update(gamma=gamma, eval_fraction=eval_fraction)
        self.gamma, self.eval_fraction = gamma, eval_fraction
        self._every = max(1, round(1.0 / eval_fraction))
        self._kept: list[GraphBatch] = []
        self._seen = 0

    def forward(
        self,
        encoder: nn.Module,
        batch: GraphBatch,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """GraphCL's loss with pairs from ``aug_prob``; keeps every k-th batch for the update."""
        if self.training:
            if self._seen % self._every == 0:
                self._kept.append(batch)
            self._seen += 1
        loss, logs = super().forward(encoder, batch, generator)
        p = self.aug_prob.clamp(min=1e-12)
        logs["aug_entropy"] = float(-(p * p.log()).sum().item())
        return loss, logs

    @torch.no_grad()
    def pair_losses(
        self,
        encoder: nn.Module,
        batches: list[GraphBatch],
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Mean GraphCL loss of each of the 25 pairs applied to every molecule, (25,).

        Batch-norm running statistics of ``encoder`` are left as they were.
        """
        saved = _batchnorm_state(encoder)
        device = self.aug_prob.device
        totals = torch.zeros(NUM_PAIRS, dtype=torch.float64, device=device)
        usable = [b for b in batches if b.num_graphs >= 2]
        try:
            for k in range(NUM_PAIRS):
                for b in usable:
                    pairs = torch.full((b.num_graphs,), k, dtype=torch.long, device=b.x.device)
                    totals[k] += self.pair_loss(encoder, b, pairs, generator)[0].double()
        finally:
            for m, buffers in saved:
                for name, value in buffers.items():
                    getattr(m, name).copy_(value)
        return totals / max(len(usable), 1)

    @torch.no_grad()
    def epoch_end(self, encoder: nn.Module, generator: torch.Generator | None = None) -> None:
        """Measure the pair losses on the kept batches and update ``aug_prob`` (min-max step)."""
        batches, self._kept, self._seen = self._kept, [], 0
        if not any(b.num_graphs >= 2 for b in batches):
            return
        losses = self.pair_losses(encoder, batches, generator)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(losses)
            losses /= torch.distributed.get_world_size()
        new = joao_update(self.aug_prob.cpu().numpy(), losses.cpu().numpy(), self.gamma)
        self.aug_prob.copy_(torch.from_numpy(new).to(self.aug_prob))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, gamma={self.gamma}"
