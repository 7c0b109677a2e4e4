"""AttrMask (attribute masking) of Hu et al. 2019, as ``chem/pretrain_masking.py``.

Mask ~15% of the atoms of every graph (at least one), encode the masked graph, and predict
each masked atom's type (first feature column) with a linear head; with ``mask_edge`` also
mask the bonds touching masked atoms and predict their type from ``h_u + h_v``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from fewmol.chem.featurize import get_featurizer
from fewmol.data.collate import GraphBatch
from fewmol.pretrain.masking import mask_atoms
from fewmol.pretrain.methods._common import Method2D


def _accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the target."""
    return float((logits.detach().argmax(1) == target).float().mean().item())


class AttrMask(Method2D):
    """Masked atom (and bond) type prediction head and loss.

    Args:
        featurizer: featuriser name; gives the mask tokens and the number of classes.
        dim: width of the encoder's node embeddings (``encoder.out_dim``).
        mask_ratio: fraction of atoms masked per graph (pretrain-gnns ``mask_rate``, 0.15).
        mask_edge: also mask and predict the bonds incident to masked atoms (default off,
            as pretrain-gnns' ``--mask_edge 0``).

    Classes: atom types are every index below the atom mask token (``hu2019``: 119, as
    pretrain-gnns' ``Linear(emb_dim, 119)``); bond types every index below the self-loop token
    (``hu2019``: 4, as its ``Linear(emb_dim, 4)``).
    """

    name: ClassVar[str] = "attrmask"

    def __init__(
        self,
        featurizer: str = "hu2019",
        dim: int = 300,
        mask_ratio: float = 0.15,
        mask_edge: bool = False,
    ):
        super().__init__()
        if not 0.0 <= mask_ratio <= 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1], got {mask_ratio}")
        self.spec = get_featurizer(featurizer)
        self.hparams: dict[str, Any] = {
            "featurizer": featurizer,
            "dim": dim,
            "mask_ratio": mask_ratio,
            "mask_edge": mask_edge,
        }
        self.mask_ratio, self.mask_edge = mask_ratio, mask_edge
        self.num_atom_classes = int(self.spec.mask_atom[0])
        self.num_bond_classes = int(self.spec.self_loop_bond[0])
        self.atom_head = nn.Linear(dim, self.num_atom_classes)
        # only built when used: a parameter without gradient breaks DDP's default settings
        self.bond_head = nn.Linear(dim, self.num_bond_classes) if mask_edge else None

    def forward(
        self,
        encoder: nn.Module,
        batch: GraphBatch,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Mask, encode, and return (cross-entropy loss, {"acc_atom", ["acc_bond"], ...})."""
        m = mask_atoms(batch, self.mask_ratio, generator, self.spec, self.mask_edge)
        h = encoder(m.batch.x, m.batch.edge_index, m.batch.edge_attr)
        atom_logits = self.atom_head(h[m.atom_idx])
        atom_target = m.atom_labels[:, 0]
        loss = F.cross_entropy(atom_logits, atom_target)
        logs = {"loss_atom": float(loss.item()), "acc_atom": _accuracy(atom_logits, atom_target)}
        # a batch of bond-less graphs (ions) has no masked bond; cross-entropy of nothing is NaN
        if self.bond_head is not None and m.edge_idx is not None and m.edge_idx.numel() > 0:
            u, v = m.batch.edge_index[:, m.edge_idx]
            bond_logits = self.bond_head(h[u] + h[v])
            bond_target = m.edge_labels[:, 0]
            loss_bond = F.cross_entropy(bond_logits, bond_target)
            loss = loss + loss_bond
            logs["loss_bond"] = float(loss_bond.item())
            logs["acc_bond"] = _accuracy(bond_logits, bond_target)
        logs["n_masked_atoms"] = float(m.atom_idx.numel())
        return loss, logs

    def extra_repr(self) -> str:
        return f"featurizer={self.spec.name}, ratio={self.mask_ratio}, mask_edge={self.mask_edge}"
