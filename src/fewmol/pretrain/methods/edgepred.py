"""EdgePred (link prediction) of Hu et al. 2019, as ``chem/pretrain_edgepred.py`` / GraphMVP's
``pretrain_EP.py``.

Encode the whole graph, then score atom pairs by the inner product of their node embeddings:
every bond is a positive pair, and as many random unbonded pairs of the same molecule are
negatives (``NegativeEdge``: per molecule, ``5 b`` random ordered pairs are drawn and the first
``b`` that are neither a bond, a self-pair nor a repeat are kept, ``b`` = bonds). Loss =
BCE(positives, 1) + BCE(negatives, 0), each averaged over its pairs.

Negatives are drawn for the whole batch at once on the device (pretrain-gnns draws them per
molecule in the dataset transform, once per epoch).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from fewmol.data.collate import GraphBatch
from fewmol.pretrain.masking import pair_keys, random_atoms_of, segment_counts
from fewmol.pretrain.methods._common import Method2D, binary_accuracy, zero_loss

OVERSAMPLE = 5  # candidate pairs drawn per wanted negative (pretrain-gnns' 5 * num_edges)


def negative_edges(
    batch: GraphBatch, generator: torch.Generator | None = None, per_bond: int = 1
) -> torch.Tensor:
    """Random atom pairs of the same molecule that are not bonded: ``per_bond`` per bond.

    Returns (2, n_neg) ordered pairs ``(u, v)``, ``u != v``, no bond between them, no pair
    twice; a molecule gets fewer when it has too few free pairs (e.g. a triangle). All
    molecules at once: candidates are drawn uniformly within each molecule, filtered with
    integer pair keys, and the first valid ones kept per molecule.
    """
    n, g = batch.x.shape[0], batch.num_graphs
    device = batch.x.device
    src, dst = batch.edge_index[0], batch.edge_index[1]
    bonds = segment_counts(batch.batch[src[src < dst]], g)
    want = bonds * per_bond
    cand_graph = torch.repeat_interleave(torch.arange(g, device=device), OVERSAMPLE * want)
    u = random_atoms_of(cand_graph, batch.batch, g, generator)
    v = random_atoms_of(cand_graph, batch.batch, g, generator)
    key = pair_keys(u, v, n, directed=True)
    valid = (u != v) & ~torch.isin(key, pair_keys(src, dst, n, directed=True))
    # keep only the first draw of a repeated pair
    uniq, inverse = torch.unique(key, return_inverse=True)
    pos = torch.arange(key.numel(), device=device)
    first = torch.full((uniq.numel(),), key.numel(), dtype=torch.long, device=device)
    first = first.scatter_reduce(0, inverse, pos, "amin")
    valid &= first[inverse] == pos
    # candidates are grouped by molecule: rank the valid ones within their molecule
    rank = torch.cumsum(valid.long(), 0)
    group_start = torch.cumsum(OVERSAMPLE * want, 0) - OVERSAMPLE * want
    before = torch.cat([torch.zeros(1, dtype=torch.long, device=device), rank])[group_start]
    rank = rank - before[cand_graph]
    keep = valid & (rank <= want[cand_graph])
    return torch.stack([u[keep], v[keep]])


class EdgePred(Method2D):
    """Link prediction with negative sampling; no parameters besides the encoder's.

    Args:
        featurizer: featuriser name (recorded; the loss does not depend on it).
        dim: width of the encoder's node embeddings (recorded).
        neg_per_bond: negative pairs per bond (default 1, as pretrain-gnns).
    """

    name: ClassVar[str] = "edgepred"

    def __init__(self, featurizer: str = "hu2019", dim: int = 300, neg_per_bond: int = 1):
        super().__init__()
        if neg_per_bond < 1:
            raise ValueError(f"neg_per_bond must be >= 1, got {neg_per_bond}")
        self.neg_per_bond = neg_per_bond
        self.hparams: dict[str, Any] = {
            "featurizer": featurizer,
            "dim": dim,
            "neg_per_bond": neg_per_bond,
        }

    def forward(
        self,
        encoder: nn.Module,
        batch: GraphBatch,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Encode, score bonds and sampled non-bonds, return (BCE loss, {"acc", ...})."""
        h = encoder(batch.x, batch.edge_index, batch.edge_attr)
        src, dst = batch.edge_index
        fwd = src < dst
        pos = (h[src[fwd]] * h[dst[fwd]]).sum(1)
        neg_edges = negative_edges(batch, generator, self.neg_per_bond)
        neg = (h[neg_edges[0]] * h[neg_edges[1]]).sum(1)
        logs = {"n_pos": float(pos.numel()), "n_neg": float(neg.numel())}
        if pos.numel() == 0:  # a batch of single atoms and ions: nothing to predict
            return zero_loss(h), logs
        loss_pos = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
        loss = loss_pos
        logs["loss_pos"] = float(loss_pos.item())
        if neg.numel() > 0:
            loss_neg = F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))
            loss = loss + loss_neg
            logs["loss_neg"] = float(loss_neg.item())
        logs["acc"] = binary_accuracy(pos, neg)
        return loss, logs

    def extra_repr(self) -> str:
        return f"neg_per_bond={self.neg_per_bond}"
