"""GPT-GNN (Hu et al. 2020): generative pre-training of atom attributes and bonds in a node order.

Each molecule gets a random breadth-first atom order (:func:`~fewmol.pretrain.masking.bfs_rank`:
a random root, then hop shells in random order, so every prefix is connected) and a prefix
length ``t`` uniform in ``1 .. n - 1``. The encoder sees only the prefix (the induced subgraph
of the first ``t`` atoms); the next atom ``v`` of the order is generated:

* **attribute generation**: ``Linear(mean-pool(prefix))`` predicts ``v``'s atom type
  (cross-entropy), exactly GraphMVP's ``pretrain_GPT_GNN.py`` (its molecule version of GPT-GNN);
* **edge generation** (GPT-GNN's second term, which GraphMVP's molecule version leaves out):
  given the prefix and ``v``'s true type (GPT-GNN generates edges after attributes), a query
  ``q = Linear([mean-pool(prefix), embed(type(v))])`` scores every prefix atom ``u`` by
  ``<q, h_u>``; each bond ``(v, u)`` is a positive and the other prefix atoms its negatives,
  in GPT-GNN's contrastive form ``-log(e^{s_u} / (e^{s_u} + sum_neg e^{s_w}))``.

Loss = ``attr_weight`` x attribute CE + ``edge_weight`` x edge loss. Molecules of one atom are
skipped; a next atom with no bond into the prefix (another fragment of a salt) has only the
attribute term.

Differences from the references, on purpose: GraphMVP materialises every prefix of one fixed
BFS order per molecule as a separate training item (n - 1 items per molecule, so its GPT-GNN
epoch is ~20x longer than the other methods'); here each molecule contributes one random
prefix per epoch, a fresh order every time, so an epoch costs what the other methods' do.
GPT-GNN's heterogeneous-graph machinery (separate attribute / edge node copies, a negative
node queue, adaptive queue sizes) has no counterpart on molecules of ~25 atoms.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from fewmol.chem.featurize import get_featurizer
from fewmol.data.collate import GraphBatch
from fewmol.models.heads import global_pool
from fewmol.pretrain.masking import (
    Subgraph,
    _rand,
    bfs_rank,
    induced_subgraph,
    segment_counts,
)
from fewmol.pretrain.methods._common import Method2D, accuracy, segment_logsumexp, zero_loss


class GenerationStep(NamedTuple):
    """Prefixes of the usable molecules and what each must generate next."""

    prefix: Subgraph
    """induced subgraph of the first ``t`` atoms of each usable molecule (input graph ids in
    ``prefix.graph_idx``, atoms' input indices in ``prefix.atom_idx``)"""
    next_atom: torch.Tensor
    """(m,) input index of the atom to generate, one per prefix graph"""
    bonded: torch.Tensor
    """(n_prefix_atoms,) bool: the prefix atom is bonded to its molecule's next atom"""


def generation_step(batch: GraphBatch, generator: torch.Generator | None = None) -> GenerationStep:
    """Sample an order and a prefix length per molecule; return prefixes and next atoms.

    Molecules with fewer than two atoms have nothing to generate and are left out.
    """
    n, g = batch.x.shape[0], batch.num_graphs
    device = batch.x.device
    counts = segment_counts(batch.batch, g)
    rank = bfs_rank(batch, generator)
    usable = counts >= 2
    # t uniform in 1 .. n-1 (the prefix always has an atom and leaves one to generate)
    t = 1 + torch.floor(_rand(g, generator, device) * (counts - 1).clamp(min=0).double()).long()
    t = torch.minimum(t, (counts - 1).clamp(min=1))
    in_usable = usable[batch.batch]
    keep = in_usable & (rank < t[batch.batch])
    is_next = in_usable & (rank == t[batch.batch])
    prefix = induced_subgraph(batch, keep, drop_empty_graphs=True)
    next_of_graph = torch.full((g,), -1, dtype=torch.long, device=device)
    next_of_graph[batch.batch[is_next]] = is_next.nonzero().squeeze(1)
    src, dst = batch.edge_index[0], batch.edge_index[1]
    touches_next = torch.zeros(n, dtype=torch.bool, device=device)
    touches_next[src[is_next[dst] & keep[src]]] = True
    return GenerationStep(prefix, next_of_graph[prefix.graph_idx], touches_next[prefix.atom_idx])


class GPTGNN(Method2D):
    """Attribute head, edge query and the GPT-GNN loss.

    Args:
        featurizer: featuriser name; atom types are the indices below the mask token
            (``hu2019``: 119 classes; GraphMVP's head has 120 outputs).
        dim: width of the encoder's node embeddings.
        attr_weight, edge_weight: weights of the attribute and edge generation losses
            (default 1 and 1; ``edge_weight=0`` is GraphMVP's attribute-only version).
    """

    name: ClassVar[str] = "gpt-gnn"

    def __init__(
        self,
        featurizer: str = "hu2019",
        dim: int = 300,
        attr_weight: float = 1.0,
        edge_weight: float = 1.0,
    ):
        super().__init__()
        if min(attr_weight, edge_weight) < 0 or attr_weight + edge_weight == 0:
            raise ValueError("attr_weight and edge_weight must be >= 0, not both 0")
        self.spec = get_featurizer(featurizer)
        self.hparams: dict[str, Any] = {
            "featurizer": featurizer,
            "dim": dim,
            "attr_weight": attr_weight,
            "edge_weight": edge_weight,
        }
        self.attr_weight, self.edge_weight = attr_weight, edge_weight
        self.num_atom_classes = int(self.spec.mask_atom[0])
        self.attr_head = nn.Linear(dim, self.num_atom_classes)
        # only built when used: a parameter without gradient breaks DDP's default settings
        self.type_embedding = nn.Embedding(self.num_atom_classes, dim) if edge_weight else None
        self.edge_query = nn.Linear(2 * dim, dim) if edge_weight else None

    def forward(
        self,
        encoder: nn.Module,
        batch: GraphBatch,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Sample prefixes, encode them, return (attribute + edge loss, logs)."""
        step = generation_step(batch, generator)
        sub = step.prefix.batch
        m = sub.num_graphs
        logs: dict[str, float] = {"n_generated": float(m)}
        if m == 0:
            return zero_loss(*self.parameters()), logs
        h = encoder(sub.x, sub.edge_index, sub.edge_attr)
        pooled = global_pool(h, sub.batch, m, "mean")
        target = batch.x[step.next_atom, 0]
        attr_logits = self.attr_head(pooled)
        loss_attr = F.cross_entropy(attr_logits, target)
        logs.update(loss_attr=float(loss_attr.item()), acc_attr=accuracy(attr_logits, target))
        loss = self.attr_weight * loss_attr
        if self.edge_query is not None and self.type_embedding is not None:
            query = self.edge_query(torch.cat([pooled, self.type_embedding(target)], dim=1))
            score = (query[sub.batch] * h).sum(1)
            pos = step.bonded
            if bool(pos.any()):
                neg_lse = segment_logsumexp(score[~pos], sub.batch[~pos], m)
                s_pos, g_pos = score[pos], sub.batch[pos]
                # -log softmax of each true bond against the prefix atoms not bonded to v
                loss_edge = (torch.logaddexp(s_pos, neg_lse[g_pos]) - s_pos).mean()
                logs.update(
                    loss_edge=float(loss_edge.item()),
                    acc_edge=float((s_pos.detach() > neg_lse[g_pos].detach()).float().mean()),
                )
                loss = loss + self.edge_weight * loss_edge
            else:  # keep every parameter in the graph (DDP expects gradients for all)
                loss = loss + zero_loss(query)
        return loss, logs

    def extra_repr(self) -> str:
        return f"attr_weight={self.attr_weight}, edge_weight={self.edge_weight}"
