"""ContextPred (context prediction) of Hu et al. 2019, as ``chem/pretrain_contextpred.py``.

For one random center atom per graph:

* the **substructure** is the subgraph induced by the atoms within ``K`` hops of the center
  (``K`` = layers of the main GIN); its representation is the main encoder's embedding of
  the center atom;
* the **context** is the subgraph induced by the atoms at distance ``r1 < d <= r2``
  (defaults ``r1 = K - 1``, ``r2 = r1 + 3``), encoded by a separate context GIN of
  ``r2 - r1`` layers; the **anchor** atoms are the context atoms that are also in the
  substructure (``r1 < d <= K``);
* ``cbow`` (default): the anchors' context embeddings are pooled (mean) into one context
  vector; the logit is ``<substructure, context>``, positive for the graph's own context,
  negative for another graph's (``neg_samples`` per graph, by cyclic shifts of the batch);
  ``skipgram`` scores each anchor embedding against the substructure vector instead.
* loss = BCE(positives, 1) + neg_samples * BCE(negatives, 0).

``logit_scale`` (default 1, as pretrain-gnns) multiplies every logit. The logits are dot
products of BatchNorm-ed ``dim``-wide embeddings (std ~17 at ``dim`` 300 at init), so the first
steps of a short run mostly shrink them; ``logit_scale = 1/sqrt(dim)`` starts them near unit
scale (``benchmarks/contextpred_scale.py``: 3,000 MOSES molecules, batch 32, 4 epochs, mean
accuracy of the 4th epoch 0.510 at 1 and 0.530 at 1/sqrt(300), loss 1.467 vs 1.383). The sign of
a logit, and so the accuracy of fixed weights, does not depend on it.

Extraction is vectorised over the batch: one multi-source BFS (:func:`hop_distances`) from
all centers, then two :func:`induced_subgraph` calls. pretrain-gnns drops molecules without a
context in its collate function; we skip graphs without anchors in the loss the same way and
report how many (``n_skipped``).
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from fewmol.chem.featurize import get_featurizer
from fewmol.data.collate import GraphBatch
from fewmol.models.gin import GINEncoder
from fewmol.models.heads import global_pool
from fewmol.pretrain.masking import hop_distances, induced_subgraph, sample_per_graph
from fewmol.pretrain.methods._common import Method2D


class SubstructContext(NamedTuple):
    """Substructure / context sub-batches for the graphs that have a usable context.

    Both sub-batches hold the same graphs in the same order (``graph_idx``).
    """

    substruct: GraphBatch
    context: GraphBatch
    center_idx: torch.Tensor
    """(m,) index of each graph's center atom in ``substruct``"""
    anchor: torch.Tensor
    """(n_context_atoms,) bool: the context atom is also in the substructure"""
    graph_idx: torch.Tensor
    """(m,) input graph id of each pair"""
    substruct_atom_idx: torch.Tensor
    """(n_substruct_atoms,) input atom index of each substructure atom"""
    context_atom_idx: torch.Tensor
    """(n_context_atoms,) input atom index of each context atom"""
    num_skipped: int
    """input graphs without a center or without anchor atoms"""


def extract_substructure_context(
    batch: GraphBatch, centers: torch.Tensor, k: int, r1: int, r2: int
) -> SubstructContext:
    """Build the K-hop substructures and (r1, r2]-hop contexts around ``centers``, batched.

    Args:
        batch: input graphs.
        centers: atom indices, at most one per graph; graphs without one are skipped.
        k: substructure radius (atoms with hop distance ``d <= k``).
        r1, r2: context ring, atoms with ``r1 < d <= r2`` (pretrain-gnns' symmetric
            difference of the ``r1``- and ``r2``-hop balls).

    Graphs whose context has no atom within ``k`` hops (no anchor: small molecules, or a
    center whose whole molecule is within ``r1`` hops) are dropped from both sub-batches.
    """
    n = batch.x.shape[0]
    dist = hop_distances(batch.edge_index, n, centers, max(k, r2))
    in_sub = (dist >= 0) & (dist <= k)
    in_ctx = (dist > r1) & (dist <= r2)
    is_anchor = in_sub & in_ctx
    has_anchor = torch.zeros(batch.num_graphs, dtype=torch.bool, device=dist.device)
    has_anchor[batch.batch[is_anchor]] = True
    usable = has_anchor[batch.batch]
    keep_sub = in_sub & usable
    sub = induced_subgraph(batch, keep_sub, drop_empty_graphs=True)
    ctx = induced_subgraph(batch, in_ctx & usable, drop_empty_graphs=True)
    graph_idx = has_anchor.nonzero().squeeze(1)
    center_of_graph = torch.full_like(has_anchor, -1, dtype=torch.long)
    center_of_graph[batch.batch[centers]] = centers
    sub_position = torch.cumsum(keep_sub.long(), 0) - 1
    return SubstructContext(
        substruct=sub.batch,
        context=ctx.batch,
        center_idx=sub_position[center_of_graph[graph_idx]],
        anchor=is_anchor[ctx.atom_idx],
        graph_idx=graph_idx,
        substruct_atom_idx=sub.atom_idx,
        context_atom_idx=ctx.atom_idx,
        num_skipped=int(batch.num_graphs - graph_idx.numel()),
    )


class ContextPred(Method2D):
    """Context prediction: a context GIN plus the substructure-context BCE loss.

    Args:
        featurizer: featuriser name (vocabulary of the context GIN's embeddings).
        dim: width of the main encoder's node embeddings; the context GIN uses it too.
        num_layers: ``K``, layers of the main encoder = substructure radius (default 5).
        r1: inner context radius, exclusive (default ``K - 1``); must be below ``K`` so the
            context and the substructure overlap.
        r2: outer context radius, inclusive (default ``r1 + 3``, pretrain-gnns' ``csize``).
            The context GIN has ``r2 - r1`` layers, as pretrain-gnns.
        neg_samples: negative contexts per substructure (default 1).
        mode: ``cbow`` (pool anchors, default) or ``skipgram`` (score every anchor).
        context_pooling: ``mean`` (default), ``sum`` or ``max`` pooling of anchors (cbow).
        jk, dropout: passed to the context GIN (default ``last``, 0.0 as pretrain-gnns).
        logit_scale: factor on every substructure-context logit (default 1, pretrain-gnns);
            must be > 0.
    """

    name: ClassVar[str] = "contextpred"

    def __init__(
        self,
        featurizer: str = "hu2019",
        dim: int = 300,
        num_layers: int = 5,
        r1: int | None = None,
        r2: int | None = None,
        neg_samples: int = 1,
        mode: str = "cbow",
        context_pooling: str = "mean",
        jk: str = "last",
        dropout: float = 0.0,
        logit_scale: float = 1.0,
    ):
        super().__init__()
        r1 = num_layers - 1 if r1 is None else r1
        r2 = r1 + 3 if r2 is None else r2
        if not 0 <= r1 < num_layers:
            raise ValueError(f"need 0 <= r1 < num_layers, got r1={r1}, num_layers={num_layers}")
        if r2 <= r1:
            raise ValueError(f"need r2 > r1, got r1={r1}, r2={r2}")
        if mode not in ("cbow", "skipgram"):
            raise ValueError(f"mode must be cbow or skipgram, got {mode!r}")
        if neg_samples < 1:
            raise ValueError(f"neg_samples must be >= 1, got {neg_samples}")
        if not logit_scale > 0:
            raise ValueError(f"logit_scale must be > 0, got {logit_scale}")
        self.spec = get_featurizer(featurizer)
        self.hparams: dict[str, Any] = {
            "featurizer": featurizer,
            "dim": dim,
            "num_layers": num_layers,
            "r1": r1,
            "r2": r2,
            "neg_samples": neg_samples,
            "mode": mode,
            "context_pooling": context_pooling,
            "jk": jk,
            "dropout": dropout,
            "logit_scale": float(logit_scale),
        }
        self.logit_scale = float(logit_scale)
        self.k, self.r1, self.r2 = num_layers, r1, r2
        self.neg_samples, self.mode, self.context_pooling = neg_samples, mode, context_pooling
        self.context_encoder = GINEncoder(
            self.spec.atom_dims,
            self.spec.bond_dims,
            self.spec.self_loop_bond,
            num_layers=r2 - r1,
            dim=dim,
            dropout=dropout,
            jk=jk,
        )

    def _shifts(self, m: int) -> list[int]:
        """Cyclic shifts pairing graph j with graph (j + s) % m, never with itself.

        pretrain-gnns shifts by 1..neg_samples, which pairs a graph with itself once
        neg_samples >= m; wrapping within 1..m-1 avoids such false negatives.
        """
        return [1 + i % (m - 1) for i in range(self.neg_samples)]

    def _zero_loss(self) -> torch.Tensor:
        """A zero that still has a graph to the parameters, so backward() works."""
        return torch.stack([p.sum() for p in self.parameters()]).sum() * 0.0

    def forward(
        self,
        encoder: nn.Module,
        batch: GraphBatch,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Sample centers, extract pairs, and return (BCE loss, {"acc", "n_skipped", ...})."""
        enc_layers = getattr(encoder, "num_layers", None)
        if isinstance(enc_layers, int) and enc_layers != self.k:
            raise ValueError(
                f"ContextPred was built for a {self.k}-layer encoder (substructure radius K), "
                f"got one with {enc_layers} layers; pass num_layers={enc_layers}"
            )
        centers = sample_per_graph(batch.batch, batch.num_graphs, 1, generator)
        pairs = extract_substructure_context(batch, centers, self.k, self.r1, self.r2)
        m = int(pairs.graph_idx.numel())
        logs: dict[str, float] = {"n_pairs": float(m), "n_skipped": float(pairs.num_skipped)}
        if m < 2:
            # no other graph to draw a negative context from
            return self._zero_loss(), logs
        sub, ctx = pairs.substruct, pairs.context
        h_sub = encoder(sub.x, sub.edge_index, sub.edge_attr)[pairs.center_idx]
        h_ctx = self.context_encoder(ctx.x, ctx.edge_index, ctx.edge_attr)
        h_anchor = h_ctx[pairs.anchor]
        anchor_graph = ctx.batch[pairs.anchor]
        shifts = self._shifts(m)
        if self.mode == "cbow":
            c = global_pool(h_anchor, anchor_graph, m, self.context_pooling)
            rows = torch.arange(m, device=c.device)
            pos = (h_sub * c).sum(1)
            neg = torch.cat([(h_sub * c[(rows + s) % m]).sum(1) for s in shifts])
        else:
            pos = (h_sub[anchor_graph] * h_anchor).sum(1)
            neg = torch.cat([(h_sub[(anchor_graph + s) % m] * h_anchor).sum(1) for s in shifts])
        if self.logit_scale != 1.0:
            pos, neg = pos * self.logit_scale, neg * self.logit_scale
        loss_pos = F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
        loss_neg = F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg))
        loss = loss_pos + self.neg_samples * loss_neg
        acc = 0.5 * ((pos > 0).float().mean() + (neg < 0).float().mean())
        logs.update(
            loss_pos=float(loss_pos.item()), loss_neg=float(loss_neg.item()), acc=float(acc.item())
        )
        return loss, logs

    def extra_repr(self) -> str:
        return (
            f"K={self.k}, r1={self.r1}, r2={self.r2}, mode={self.mode}, "
            f"neg_samples={self.neg_samples}"
            + (f", logit_scale={self.logit_scale:g}" if self.logit_scale != 1.0 else "")
        )
