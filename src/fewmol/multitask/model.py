"""The multi-task network: GIN encoder + pooling + either independent heads or the SGNN head.

Independent heads (one logit per task from a shared linear layer) serve ``mtl``, ``uw``,
``gradnorm``, ``dwa``, ``lbtw`` and, with one task per model, ``stl``; the structured head
(:class:`~fewmol.multitask.sgnn.StructuredHead`) serves ``sgnn`` and ``sgnn-ebm``.
:func:`build_net` rebuilds a network from a model config and its task graph.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fewmol.data.collate import GraphBatch
from fewmol.models.gin import GINEncoder
from fewmol.models.heads import LinearHead, global_pool
from fewmol.multitask.sgnn import SGNNOutput, StructuredHead
from fewmol.multitask.task_graph import TaskGraph

METHODS = ("sgnn-ebm", "sgnn", "mtl", "stl", "uw", "gradnorm", "dwa", "lbtw")
STRUCTURED = ("sgnn", "sgnn-ebm")


class MultitaskNet(nn.Module):
    """Molecule encoder, pooled, then a multi-task head (linear or structured)."""

    def __init__(
        self,
        encoder: GINEncoder,
        num_tasks: int,
        pooling: str = "mean",
        structured: StructuredHead | None = None,
    ):
        super().__init__()
        self.encoder, self.pooling, self.num_tasks = encoder, pooling, num_tasks
        self.head: nn.Module = (
            LinearHead(encoder.out_dim, num_tasks) if structured is None else structured
        )

    @property
    def structured(self) -> bool:
        """True for the SGNN head."""
        return isinstance(self.head, StructuredHead)

    def embed(self, batch: GraphBatch) -> torch.Tensor:
        """Pooled molecule embeddings (B, d)."""
        h = self.encoder(batch.x, batch.edge_index, batch.edge_attr)
        return global_pool(h, batch.batch, batch.num_graphs, self.pooling)

    def forward(self, batch: GraphBatch, potentials: bool = False) -> SGNNOutput:
        """Logits (B, T) and, for the structured head with ``potentials``, the EBM tables."""
        z = self.embed(batch)
        if self.structured:
            return self.head(z, potentials)
        return SGNNOutput(self.head(z))


def build_net(
    config: dict[str, Any], graph: TaskGraph | None, num_tasks: int | None = None
) -> MultitaskNet:
    """A MultitaskNet from a multitask model config (``encoder``, ``structured``, ...).

    ``num_tasks`` overrides the number of outputs (1 for each model of ``stl``).
    """
    from fewmol.io.modeldir import build_encoder

    enc = build_encoder(config["encoder"])
    t = len(config["task_names"]) if num_tasks is None else num_tasks
    structured = None
    if config["method"] in STRUCTURED:
        if graph is None:
            raise ValueError(f"method {config['method']!r} needs a task graph")
        hp = config["structured"]
        structured = StructuredHead(
            t,
            graph.edge_index,
            graph.edge_weight,
            enc.out_dim,
            task_dim=hp["task_dim"],
            state_dim=hp["state_dim"],
            hidden=hp["hidden"],
            num_layers=hp["num_layers"],
            gcn_layers=hp["gcn_layers"],
            dropout=hp["dropout"],
            smoothing=hp.get("smoothing", 0.0),
            bilinear=bool(hp.get("bilinear", False)),
        )
    return MultitaskNet(enc, t, config.get("pooling", "mean"), structured)
