"""2D self-supervised pre-training methods behind one small interface.

A method is an ``nn.Module`` holding only its own parts (prediction heads, a context GIN,
...), never the encoder being pre-trained, so one training loop can wrap any of them::

    method = METHODS[name](**hparams)          # e.g. AttrMask(featurizer="hu2019", dim=300)
    loss, logs = method.loss(encoder, batch, generator)
    loss.backward()                            # optimise encoder and method parameters

* ``method.loss(encoder, batch, generator) -> (loss, logs)``: ``encoder`` maps
  ``(x, edge_index, edge_attr)`` to node embeddings (:class:`~fewmol.models.gin.GINEncoder`),
  ``batch`` is a :class:`~fewmol.data.collate.GraphBatch`, ``generator`` an optional
  ``torch.Generator`` for the method's random choices (masked atoms, centers); ``loss`` is a
  scalar tensor to back-propagate, ``logs`` a dict of floats to log (accuracies, counts).
* ``method.hparams``: the constructor arguments, JSON-ready, for config.json;
  ``METHODS[method.name](**method.hparams)`` rebuilds the same module.
* optional ``method.epoch_end(encoder, generator)``: per-epoch state (JOAO's augmentation
  distribution, GraphLoG's prototypes); the training loop calls it after each epoch's last
  optimisation step, before the epoch's checkpoint is written.
* optional ``method.mid_epoch_resume = False``: the method keeps state within an epoch that
  checkpoints do not hold (JOAO's kept batches), so runs checkpoint it at epoch ends only.

Shared parts: :mod:`fewmol.pretrain.masking` (masks, subgraphs, BFS orders, per-graph
sampling), :mod:`fewmol.pretrain.augment` (GraphCL's augmentations), ``_common`` (losses'
small helpers). Methods that need data-derived state get it from the run: G-Contextual its
vocabulary (``build_context_vocab``), G-Motif its labels (``batch.y``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from fewmol.data.collate import GraphBatch
from fewmol.pretrain.methods.attrmask import AttrMask
from fewmol.pretrain.methods.contextpred import ContextPred
from fewmol.pretrain.methods.contextual import GContextual
from fewmol.pretrain.methods.edgepred import EdgePred
from fewmol.pretrain.methods.gpt_gnn import GPTGNN
from fewmol.pretrain.methods.graphcl import GraphCL
from fewmol.pretrain.methods.graphlog import GraphLoG
from fewmol.pretrain.methods.infograph import InfoGraph
from fewmol.pretrain.methods.joao import JOAO
from fewmol.pretrain.methods.motif import GMotif


class PretrainMethod(Protocol):
    """What a training loop needs from a 2D pre-training method."""

    name: ClassVar[str]
    hparams: dict[str, Any]

    def loss(
        self, encoder: nn.Module, batch: GraphBatch, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss tensor and logged floats for one batch."""
        ...


METHODS: dict[str, type[nn.Module]] = {
    m.name: m
    for m in (
        AttrMask,
        ContextPred,
        EdgePred,
        InfoGraph,
        GPTGNN,
        GraphLoG,
        GContextual,
        GMotif,
        GraphCL,
        JOAO,
    )
}

__all__ = [
    "JOAO",
    "METHODS",
    "AttrMask",
    "ContextPred",
    "EdgePred",
    "GContextual",
    "GMotif",
    "GPTGNN",
    "GraphCL",
    "GraphLoG",
    "InfoGraph",
    "PretrainMethod",
]
