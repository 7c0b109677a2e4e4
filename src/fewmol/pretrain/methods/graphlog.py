"""GraphLoG (Xu et al. 2021): local instance alignment plus hierarchical prototypes, as
GraphMVP's ``pretrain_GraphLoG.py`` (the authors' ``pretrain_graphlog.py``).

Each molecule is encoded twice: as is, and with ``int(0.3 n + 1)`` atoms masked. A projection
head (Linear-ReLU-Linear) maps node and mean-pooled graph embeddings; with cosine similarity
over temperature ``tau`` (0.04):

* **intra (local)**: every masked atom's masked-view embedding must pick out the same atom's
  unmasked embedding among all atoms of its molecule (InfoNCE within the molecule);
* **inter (global)**: every masked-view molecule must pick out its own unmasked molecule among
  the batch (InfoNCE across molecules);
* **proto (hierarchical)**: ``hierarchy`` (3) levels of prototypes, finer to coarser, each
  fine prototype linked to one coarse parent. A molecule's unmasked embedding is assigned,
  top-down, to its most similar coarse prototype, then to the most similar child of that one,
  and so on; the masked view must predict those assignments (InfoNCE over the allowed
  prototypes at each level, summed). After each batch the finest prototypes move toward the
  mean of their assigned molecules (moving average, ``decay`` 0.95) and every coarser
  prototype becomes the mean of its children.

L = alpha * intra + beta * inter (+ gamma * proto once the prototypes exist; 1, 1, 0.1).
Like GraphLoG, the first ``warmup_epochs`` (1) train without the prototype term; during the
last of them the finest prototypes are fitted online to the batches' embeddings, and at its
end the coarser levels are built from them by rival-penalised competitive learning
(:meth:`GraphLoG.epoch_end`, called by ``Pretrain2DModule`` after an epoch's last step).

Prototype state lives in fixed-size buffers (``proto``, ``active``, ``parent``), so a
checkpoint restores it exactly; unused prototypes are masked rather than dropped.

Differences from the reference code, on purpose: the warm-up epoch counts toward ``--epochs``
(GraphLoG runs 1 warm-up epoch, then ``--epochs`` more); the finest prototypes are fitted
during the warm-up epoch, not in an extra evaluation pass after it; the intra-molecule
positive is the same atom only (the code also counts every other masked atom of the molecule
as a positive, against the paper's equation); the rival in competitive learning is the
second-best prototype (the code's zeroed similarity can pick the winner again).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from fewmol.chem.featurize import get_featurizer
from fewmol.data.collate import GraphBatch
from fewmol.models.heads import global_pool
from fewmol.pretrain.masking import atoms_by_graph, mask_atoms
from fewmol.pretrain.methods._common import Method2D, projection_head, segment_logsumexp

INIT_ITERATIONS = 20  # passes of competitive learning per level (GraphLoG's init_proto)


def intra_nce(
    h: torch.Tensor,
    h_masked: torch.Tensor,
    masked: torch.Tensor,
    batch: torch.Tensor,
    num_graphs: int,
    tau: float,
) -> tuple[torch.Tensor, float]:
    """InfoNCE of each masked atom's masked-view embedding against its molecule's atoms.

    Positive: the same atom's unmasked embedding; candidates: every atom of the molecule.
    Returns (mean loss, fraction whose positive beats a uniform guess).
    """
    hn, hmn = F.normalize(h, dim=1), F.normalize(h_masked, dim=1)
    perm, starts, counts = atoms_by_graph(batch, num_graphs)
    g = batch[masked]
    cnt = counts[g]
    rows = torch.repeat_interleave(torch.arange(masked.numel(), device=h.device), cnt)
    offset = torch.arange(rows.numel(), device=h.device) - torch.repeat_interleave(
        torch.cumsum(cnt, 0) - cnt, cnt
    )
    cand = perm[starts[g][rows] + offset]
    sims = (hn[cand] * hmn[masked][rows]).sum(1) / tau
    lse = segment_logsumexp(sims, rows, masked.numel())
    pos = (hn[masked] * hmn[masked]).sum(1) / tau
    nll = lse - pos
    acc = (nll.detach() < torch.log(cnt.double()).to(nll.dtype)).float().mean()
    return nll.mean(), float(acc.item())


def inter_nce(z: torch.Tensor, z_masked: torch.Tensor, tau: float) -> tuple[torch.Tensor, float]:
    """InfoNCE of each masked molecule against all unmasked molecules of the batch."""
    sim = F.normalize(z, dim=1) @ F.normalize(z_masked, dim=1).T / tau  # [original, masked]
    nll = torch.logsumexp(sim, dim=0) - sim.diagonal()
    acc = (nll.detach() < math.log(sim.shape[0])).float().mean()
    return nll.mean(), float(acc.item())


class GraphLoG(Method2D):
    """Projection head, prototype hierarchy and the GraphLoG loss.

    Args:
        featurizer: featuriser name (mask token).
        dim: width of the encoder's node embeddings.
        mask_ratio: atoms masked per molecule, ``int(n * ratio + 1)`` (GraphLoG: 0.3).
        temperature: ``tau`` of every InfoNCE term (0.04).
        decay: moving-average rate of the prototypes (0.95).
        num_proto: prototypes per level before pruning (100).
        hierarchy: prototype levels (3).
        alpha, beta, gamma: weights of the intra, inter and prototype terms (1, 1, 0.1).
        warmup_epochs: epochs before the prototype term starts (1).
    """

    name: ClassVar[str] = "graphlog"

    def __init__(
        self,
        featurizer: str = "hu2019",
        dim: int = 300,
        mask_ratio: float = 0.3,
        temperature: float = 0.04,
        decay: float = 0.95,
        num_proto: int = 100,
        hierarchy: int = 3,
        alpha: float = 1.0,
        beta: float = 1.0,
        gamma: float = 0.1,
        warmup_epochs: int = 1,
    ):
        super().__init__()
        if not 0.0 <= mask_ratio <= 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1], got {mask_ratio}")
        if temperature <= 0 or not 0.0 < decay < 1.0:
            raise ValueError("need temperature > 0 and 0 < decay < 1")
        if num_proto < 2 or hierarchy < 1 or warmup_epochs < 1:
            raise ValueError("need num_proto >= 2, hierarchy >= 1 and warmup_epochs >= 1")
        self.spec = get_featurizer(featurizer)
        self.hparams: dict[str, Any] = {
            "featurizer": featurizer,
            "dim": dim,
            "mask_ratio": mask_ratio,
            "temperature": temperature,
            "decay": decay,
            "num_proto": num_proto,
            "hierarchy": hierarchy,
            "alpha": alpha,
            "beta": beta,
            "gamma": gamma,
            "warmup_epochs": warmup_epochs,
        }
        self.mask_ratio, self.tau, self.decay = mask_ratio, temperature, decay
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.hierarchy, self.warmup_epochs = hierarchy, warmup_epochs
        self.projection = projection_head(dim)
        # level 0 = finest; GraphLoG initialises prototypes with torch.rand
        self.register_buffer("proto", torch.rand(hierarchy, num_proto, dim))
        self.register_buffer("active", torch.zeros(hierarchy, num_proto, dtype=torch.bool))
        # parent[l, k]: index at level l + 1 of level-l prototype k (-1: none)
        self.register_buffer("parent", torch.full((max(hierarchy - 1, 1), num_proto), -1))
        self.register_buffer("epochs_done", torch.zeros(1, dtype=torch.long))

    @property
    def prototypes_ready(self) -> bool:
        """Whether the warm-up is over and the prototype term is trained."""
        return int(self.epochs_done.item()) >= self.warmup_epochs

    # ---------------------------------------------------------------- prototypes
    @torch.no_grad()
    def _fit_finest(self, z: torch.Tensor) -> None:
        """Move each finest prototype toward the mean of the molecules closest to it."""
        sim = F.normalize(z, dim=1) @ F.normalize(self.proto[0], dim=1).T
        assign = F.one_hot(sim.argmax(1), self.proto.shape[1]).to(z.dtype)
        self._move_finest(z, assign)
        self.active[0] |= assign.sum(0) > 0

    @torch.no_grad()
    def _move_finest(self, z: torch.Tensor, assign: torch.Tensor) -> None:
        """Moving average of the finest prototypes toward their assigned molecules' mean."""
        cnt = assign.sum(0)
        mean = (assign.T @ z) / cnt.clamp(min=1).unsqueeze(1)
        moved = cnt > 0
        self.proto[0, moved] = self.decay * self.proto[0, moved] + (1 - self.decay) * mean[moved]

    @torch.no_grad()
    def _pool_upwards(self) -> None:
        """Each coarser prototype becomes the mean of its children (only those with any)."""
        for level in range(1, self.hierarchy):
            parent = self.parent[level - 1]
            child = (parent >= 0) & self.active[level - 1]
            p, c = parent[child], self.proto[level - 1, child]
            sums = torch.zeros_like(self.proto[level]).index_add(0, p, c)
            cnt = torch.bincount(p, minlength=self.proto.shape[1])
            has = cnt > 0
            self.proto[level, has] = sums[has] / cnt[has].unsqueeze(1).to(sums.dtype)

    @torch.no_grad()
    def build_hierarchy(self) -> None:
        """Coarser levels from the finest by rival-penalised competitive learning (once).

        Sequential by nature (each update moves the prototypes the next one is compared to),
        so a loop over <= ``num_proto`` children x 20 passes; it runs once per training run.
        """
        if not bool(self.active[0].any()):
            self.active[0] = True  # nothing was fitted (no batch seen): keep them all
        for level in range(1, self.hierarchy):
            child_idx = self.active[level - 1].nonzero().squeeze(1)
            children = self.proto[level - 1, child_idx]
            protos = self.proto[level].clone()
            winner = torch.zeros(child_idx.numel(), dtype=torch.long, device=protos.device)
            state = torch.zeros_like(self.active[level])
            for it in range(INIT_ITERATIONS):
                for i in range(children.shape[0]):
                    sim = protos @ children[i]
                    w = int(sim.argmax())
                    winner[i] = w
                    if it == INIT_ITERATIONS - 1:
                        state[w] = True
                    protos[w] = protos[w] * self.decay + children[i] * (1 - self.decay)
                    sim[w] = float("-inf")
                    r = int(sim.argmax())  # the rival: pushed away from the child
                    protos[r] = protos[r] * (2 - self.decay) - children[i] * (1 - self.decay)
            self.proto[level] = protos
            self.active[level] = state
            self.parent[level - 1] = -1
            self.parent[level - 1, child_idx] = winner

    def proto_nce(self, z: torch.Tensor, z_masked: torch.Tensor) -> torch.Tensor:
        """Top-down prototype assignment of ``z``, predicted from ``z_masked``; then update."""
        zn, zmn = F.normalize(z, dim=1), F.normalize(z_masked, dim=1)
        loss = z.new_zeros(())
        chosen: torch.Tensor | None = None
        for level in reversed(range(self.hierarchy)):
            pn = F.normalize(self.proto[level], dim=1)
            allowed = self.active[level].unsqueeze(0).expand(z.shape[0], -1)
            if chosen is not None:
                allowed = allowed & (self.parent[level].unsqueeze(0) == chosen.unsqueeze(1))
            sim = (zn.detach() @ pn.T).masked_fill(~allowed, float("-inf"))
            chosen = sim.argmax(1)
            logits = (zmn @ pn.T / self.tau).masked_fill(~allowed, float("-inf"))
            loss = loss + F.cross_entropy(logits, chosen)
        assert chosen is not None
        self._move_finest(z.detach(), F.one_hot(chosen, self.proto.shape[1]).to(z.dtype))
        self._pool_upwards()
        return loss

    @torch.no_grad()
    def epoch_end(self, encoder: nn.Module, generator: torch.Generator | None = None) -> None:
        """Count the epoch; at the end of the warm-up, build the prototype hierarchy."""
        self.epochs_done += 1
        if int(self.epochs_done.item()) == self.warmup_epochs:
            self.build_hierarchy()

    # ---------------------------------------------------------------- loss
    def forward(
        self,
        encoder: nn.Module,
        batch: GraphBatch,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Mask, encode both views, return (GraphLoG loss, logs)."""
        g = batch.num_graphs
        m = mask_atoms(batch, self.mask_ratio, generator, self.spec)
        h = encoder(batch.x, batch.edge_index, batch.edge_attr)
        hm = encoder(m.batch.x, m.batch.edge_index, m.batch.edge_attr)
        z = self.projection(global_pool(h, batch.batch, g, "mean"))
        zm = self.projection(global_pool(hm, batch.batch, g, "mean"))
        loss_intra, acc_intra = intra_nce(
            self.projection(h), self.projection(hm), m.atom_idx, batch.batch, g, self.tau
        )
        loss_inter, acc_inter = inter_nce(z, zm, self.tau)
        loss = self.alpha * loss_intra + self.beta * loss_inter
        logs = {
            "loss_intra": float(loss_intra.item()),
            "loss_inter": float(loss_inter.item()),
            "acc_intra": acc_intra,
            "acc_inter": acc_inter,
        }
        if self.prototypes_ready:
            loss_proto = self.proto_nce(z, zm)
            loss = loss + self.gamma * loss_proto
            logs["loss_proto"] = float(loss_proto.item())
            for level in range(self.hierarchy):
                logs[f"n_proto_{level}"] = float(self.active[level].sum().item())
        elif self.training and int(self.epochs_done.item()) == self.warmup_epochs - 1:
            self._fit_finest(z.detach())
        return loss, logs

    def extra_repr(self) -> str:
        return (
            f"mask_ratio={self.mask_ratio}, tau={self.tau}, hierarchy={self.hierarchy}, "
            f"num_proto={self.proto.shape[1]}, warmup_epochs={self.warmup_epochs}"
        )
