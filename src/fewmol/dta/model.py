"""Drug–target affinity model: GIN drug encoder + DeepDTA protein CNN + MLP on the pair.

The MLP follows DeepDTA: [drug ⊕ protein] -> 1024 -> 1024 -> 512 -> 1 with ReLU and dropout 0.1
after the first two hidden layers. Distinct drugs and proteins of a batch are encoded once and
indexed back per pair (``drug_index``, ``protein_index``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fewmol.data.collate import GraphBatch
from fewmol.errors import ModelFileError
from fewmol.io.checkpoint import load_state_into, load_tensors
from fewmol.io.modeldir import build_encoder, read_model_config
from fewmol.models.dropout import Dropout
from fewmol.models.gin import GINEncoder
from fewmol.models.heads import global_pool
from fewmol.models.protein import ProteinCNN

DEEPDTA_HIDDEN = (1024, 1024, 512)


class DTAModel(nn.Module):
    """GIN (pooled) and ProteinCNN embeddings, concatenated per pair, through an MLP.

    Shapes: forward returns (n_pairs,) outputs (standardised units; the module rescales).
    """

    def __init__(
        self,
        drug_encoder: GINEncoder,
        protein_encoder: ProteinCNN,
        hidden: Sequence[int] = DEEPDTA_HIDDEN,
        dropout: float = 0.1,
        pooling: str = "mean",
    ):
        super().__init__()
        self.drug_encoder, self.protein_encoder, self.pooling = (
            drug_encoder,
            protein_encoder,
            pooling,
        )
        self.hidden, self.dropout = [int(h) for h in hidden], float(dropout)
        widths = [drug_encoder.out_dim + protein_encoder.out_dim, *self.hidden]
        layers: list[nn.Module] = []
        for i in range(len(self.hidden)):
            layers += [nn.Linear(widths[i], widths[i + 1]), nn.ReLU()]
            if i < len(self.hidden) - 1:  # DeepDTA: no dropout after the last hidden layer
                layers.append(Dropout(self.dropout))
        layers.append(nn.Linear(widths[-1], 1))
        self.head = nn.Sequential(*layers)

    @property
    def head_hparams(self) -> dict[str, Any]:
        """MLP settings for config.json."""
        return {"hidden": self.hidden, "dropout": self.dropout}

    def embed_drugs(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
        batch: torch.Tensor, num_graphs: int,
    ) -> torch.Tensor:  # fmt: skip
        """Pooled GIN embeddings (num_graphs, drug_encoder.out_dim)."""
        return global_pool(
            self.drug_encoder(x, edge_index, edge_attr), batch, num_graphs, self.pooling
        )

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
        batch: torch.Tensor,
        num_graphs: int,
        drug_index: torch.Tensor,
        tokens: torch.Tensor,
        lengths: torch.Tensor,
        protein_index: torch.Tensor,
    ) -> torch.Tensor:
        """One output per pair: drugs ``drug_index`` with proteins ``protein_index``."""
        drug = self.embed_drugs(x, edge_index, edge_attr, batch, num_graphs)
        prot = self.protein_encoder(tokens, lengths)
        return self.pair_head(drug, prot, drug_index, protein_index)

    def embed_tables(
        self,
        drug_batches: Iterable[tuple[np.ndarray, GraphBatch]],
        protein_batches: Iterable[tuple[np.ndarray, torch.Tensor, torch.Tensor]],
        n_drugs: int,
        n_proteins: int,
        device: torch.device | str = "cpu",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(n_drugs, d) and (n_proteins, d) embedding tables, each row filled by the batch that
        names its id (rows no batch names stay zero); each entity is encoded once."""
        drug = prot = None
        for ids, g in drug_batches:
            g = g.to(device)
            z = self.embed_drugs(g.x, g.edge_index, g.edge_attr, g.batch, g.num_graphs)
            if drug is None:
                drug = z.new_zeros((n_drugs, z.shape[1]))
            drug[torch.from_numpy(ids).to(device)] = z
        for ids, tokens, lengths in protein_batches:
            z = self.protein_encoder(tokens.to(device), lengths.to(device))
            if prot is None:
                prot = z.new_zeros((n_proteins, z.shape[1]))
            prot[torch.from_numpy(ids).to(device)] = z
        return drug, prot

    def pair_head(
        self,
        drug: torch.Tensor,
        prot: torch.Tensor,
        drug_index: torch.Tensor,
        protein_index: torch.Tensor,
    ) -> torch.Tensor:
        """MLP outputs (n_pairs,) for rows ``drug_index`` of ``drug`` with ``protein_index``."""
        z = torch.cat([drug.index_select(0, drug_index), prot.index_select(0, protein_index)], 1)
        return self.head(z).squeeze(1)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(drug={self.drug_encoder!r}, pooling={self.pooling}, "
            f"protein={self.protein_encoder!r}, mlp={self.hidden}, dropout={self.dropout})"
        )


def build_dta_model(config: dict[str, Any]) -> DTAModel:
    """A DTAModel from a DTA config (``encoder``, ``protein_encoder``, ``head``, ``pooling``)."""
    try:
        protein = ProteinCNN(**config["protein_encoder"])
        head = config.get("head", {})
        return DTAModel(
            build_encoder(config["encoder"]),
            protein,
            head.get("hidden", DEEPDTA_HIDDEN),
            head.get("dropout", 0.1),
            config.get("pooling", "mean"),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"DTA model config does not match this fewmol version: {e}") from None


def load_dta_model(model_dir: str | Path) -> tuple[DTAModel, dict[str, Any]]:
    """Rebuild a trained DTA model from its dir with its best-validation weights (eval mode)."""
    model_dir = Path(model_dir)
    cfg = read_model_config(model_dir)
    if cfg.get("kind") != "dta_model":
        raise ModelFileError(f"{model_dir} holds a {cfg.get('kind', 'unknown')!r}, not a DTA model")
    model = build_dta_model(cfg)
    path = model_dir / "model.safetensors"
    load_state_into(model, load_tensors(path), str(path))
    return model.eval(), cfg
