"""LightningModules for pre-training: a 2D method alone, or GraphMVP (2D GIN + 3D SchNet).

Both log the per-epoch mean of every loss part (weighted by molecules per batch, gathered
across DDP ranks) through :meth:`PretrainModule.pop_epoch_metrics`, draw their random choices
(masked atoms, context centres) from a generator re-seeded from (seed, epoch, rank) at each
epoch start and re-seed torch's RNG likewise, so a resumed run repeats an unbroken one (from a
mid-epoch checkpoint too: :meth:`PretrainModule.epoch_progress`), and keep only the GIN encoder
for fine-tuning (``module.encoder``).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from fewmol.data.collate import GraphBatch
from fewmol.models.gin import GINEncoder
from fewmol.models.heads import global_pool
from fewmol.models.schnet import SchNetEncoder
from fewmol.pretrain.data import Batch3D
from fewmol.pretrain.losses import GraphMVPLoss
from fewmol.pretrain.masking import (  # MASK_MODES, subgraph_keep: re-exported from here
    MASK_MODES,
    induced_subgraph,
    mask_atoms,
    subgraph_keep,
)
from fewmol.training import make_adam

__all__ = ["MASK_MODES", "GraphMVPModule", "Pretrain2DModule", "PretrainModule", "subgraph_keep"]

Parts = dict[str, torch.Tensor | float]


def _epoch_seed(seed: int, epoch: int, rank: int, stream: int = 0) -> int:
    """A 63-bit seed for (run seed, absolute epoch, DDP rank[, stream])."""
    key = [seed, epoch, rank] + ([stream] if stream else [])
    return int(np.random.SeedSequence(key).generate_state(2, np.uint64)[0] >> 1)


class PretrainModule(L.LightningModule):
    """Shared training loop: per-epoch generator, loss-part means, Adam with param groups.

    Subclasses define :meth:`compute_loss` (batch -> loss, parts) and :meth:`param_groups`.
    """

    def __init__(
        self, encoder: GINEncoder, lr: float = 1e-3, weight_decay: float = 0.0, seed: int = 0
    ):
        super().__init__()
        self.encoder = encoder
        self.lr, self.weight_decay, self.seed = lr, weight_decay, seed
        self.epoch_offset = 0  # epochs finished before this fit (resume)
        self.optimizer_state: dict | None = None  # restored on resume
        self.generator = torch.Generator()
        self._sums: dict[str, torch.Tensor | float] = {}
        self._weights: dict[str, int] = {}
        self._molecules = 0
        # a mid-epoch checkpoint's progress, applied at the first batch of the resumed fit
        self.pending_progress: dict[str, Any] | None = None

    # ------------------------------------------------------------------ to override
    def compute_loss(self, batch: Any) -> tuple[torch.Tensor, Parts]:
        """Loss to minimise and its parts (detached tensors or floats) for one batch."""
        raise NotImplementedError

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimiser parameter groups (each with its own ``lr``)."""
        return [{"params": list(self.parameters()), "lr": self.lr}]

    # ------------------------------------------------------------------ training
    def on_train_epoch_start(self) -> None:
        """Re-seed the method generator from (seed, absolute epoch, rank)."""
        epoch = self.epoch_offset + self.current_epoch
        self.generator.manual_seed(_epoch_seed(self.seed, epoch, self.global_rank))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """One optimisation step; accumulates the parts for the epoch means."""
        loss, parts = self.compute_loss(batch)
        n = int(batch.num_graphs)
        for key, value in parts.items():
            v = value.detach() if torch.is_tensor(value) else float(value)
            self._sums[key] = self._sums.get(key, 0.0) + v * n
            self._weights[key] = self._weights.get(key, 0) + n
        self._molecules += n
        self.log("loss", loss.detach(), batch_size=n, prog_bar=True, logger=False)
        return loss

    @property
    def mid_epoch_resume(self) -> bool:
        """Whether a checkpoint written inside an epoch can resume it exactly."""
        return True

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Seed torch's RNG at an epoch's first batch, or restore a mid-epoch stop's progress.

        torch's global RNG (VRR noise, negatives) is re-seeded from (seed, epoch, rank) at the
        first batch rather than carried across epochs: how often Lightning and the DataLoader
        draw from it between epochs differs between an unbroken and a resumed run. A mid-epoch
        checkpoint's state is applied here, not at load time, for the same reason.
        """
        progress, self.pending_progress = self.pending_progress, None
        rank = self.global_rank
        if progress is not None and rank == 0:  # gathered sums: the epoch end adds the ranks'
            self._sums = dict(progress["sums"])
            self._weights = {k: int(v) for k, v in progress["weights"].items()}
            self._molecules = int(progress["molecules"])
        world = getattr(getattr(self, "_trainer", None), "world_size", 1)
        if progress is not None and len(progress["generators"]) == world:
            self.generator.set_state(progress["generators"][rank])
            torch.set_rng_state(progress["torch_rngs"][rank])
            cuda = (progress.get("cuda_rngs") or [None] * world)[rank]
            if cuda is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(cuda, self.device)
        elif progress is not None or batch_idx == 0:  # another world size: the epoch's seeds
            epoch = self.epoch_offset + self.current_epoch
            torch.manual_seed(_epoch_seed(self.seed, epoch, rank, stream=1))

    def _gathered_epoch(
        self, *extra: Any
    ) -> tuple[dict[str, float], dict[str, int], int, list[tuple[Any, ...]]]:
        """The epoch's part sums, their weights and molecules added over ranks; each rank's
        ``extra``. Under DDP every rank must call this at the same step."""
        local = ({k: float(v) for k, v in self._sums.items()}, dict(self._weights), self._molecules)
        trainer = getattr(self, "_trainer", None)
        if trainer is not None and trainer.world_size > 1 and torch.distributed.is_initialized():
            gathered: list[Any] = [None] * trainer.world_size
            # dicts, not tensors: ranks may log different keys (e.g. a batch without bonds)
            torch.distributed.all_gather_object(gathered, (*local, extra))
        else:
            gathered = [(*local, extra)]
        sums: dict[str, float] = {}
        weights: dict[str, int] = {}
        for s, w, _, _ in gathered:
            for k, v in s.items():
                sums[k] = sums.get(k, 0.0) + v
                weights[k] = weights.get(k, 0) + w[k]
        return sums, weights, sum(g[2] for g in gathered), [g[3] for g in gathered]

    def epoch_progress(self) -> dict[str, Any]:
        """The epoch so far, gathered over ranks: summed loss parts, molecules, RNG states.

        Under DDP every rank must call this at the same step (it gathers across ranks).
        """
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        sums, weights, molecules, states = self._gathered_epoch(
            self.generator.get_state(), torch.get_rng_state(), cuda
        )
        return {
            "sums": sums,
            "weights": weights,
            "molecules": molecules,
            "generators": [g for g, _, _ in states],
            "torch_rngs": [t for _, t, _ in states],
            "cuda_rngs": [c for _, _, c in states],
        }

    def pop_epoch_metrics(self) -> dict[str, float]:
        """Per-epoch mean of every part over all ranks, plus ``molecules`` seen; then reset.

        Under DDP every rank must call this (the sums are gathered across ranks).
        """
        total, weight, molecules, _ = self._gathered_epoch()
        self._sums, self._weights, self._molecules = {}, {}, 0
        out: dict[str, float] = {k: total[k] / weight[k] for k in total if weight[k] > 0}
        out["molecules"] = molecules
        return out

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam over :meth:`param_groups`; restores the optimiser state on resume."""
        groups = [g for g in self.param_groups() if g["params"]]
        opt = make_adam(groups, self.lr, self.weight_decay)
        if self.optimizer_state is not None:
            opt.load_state_dict(self.optimizer_state)
            self.optimizer_state = None
        return opt


class Pretrain2DModule(PretrainModule):
    """A 2D self-supervised method (``METHODS``) training a GIN on graphs alone.

    Logs ``loss`` and the method's own values as ``<method>_<name>``.
    """

    def __init__(
        self,
        encoder: GINEncoder,
        method: nn.Module,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        seed: int = 0,
    ):
        super().__init__(encoder, lr, weight_decay, seed)
        self.method = method

    @property
    def mid_epoch_resume(self) -> bool:
        """False for a method whose epoch-end update needs the whole epoch (JOAO)."""
        return bool(getattr(self.method, "mid_epoch_resume", True))

    def compute_loss(self, batch: GraphBatch) -> tuple[torch.Tensor, Parts]:
        """The method's loss on the batch."""
        loss, logs = self.method.loss(self.encoder, batch, self.generator)
        parts: Parts = {"loss": loss.detach()}
        parts.update({f"{self.method.name}_{k}": v for k, v in logs.items()})
        return loss, parts

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """After an epoch's last step, let the method update per-epoch state (JOAO, GraphLoG).

        Here rather than in ``on_train_epoch_end``: Lightning runs callbacks' epoch-end hooks
        first, so the epoch's checkpoint would otherwise miss the update.
        """
        epoch_end = getattr(self.method, "epoch_end", None)
        if epoch_end is not None and batch_idx == self.trainer.num_training_batches - 1:
            epoch_end(self.encoder, self.generator)


class GraphMVPModule(PretrainModule):
    r"""GraphMVP: GIN (2D, masked input, mean pooling) against SchNet (3D), plus an optional 2D
    method (GraphMVP-G: AttrMask, GraphMVP-C: ContextPred).

    .. math:: L = \alpha_1 L_C + \alpha_2 L_G + \alpha_3 L_{2D}

    Masking (``mask_ratio`` M > 0, training only): ``atoms`` replaces the features of
    ``int(n M + 1)`` atoms per graph by the mask token in the 2D input
    (:func:`~fewmol.pretrain.masking.mask_atoms`), the 3D view keeps every atom; ``subgraph``
    keeps a connected ``1 - M`` of each molecule in *both* views (:func:`subgraph_keep`), as
    GraphMVP's released code does. The 2D method sees the unmasked graph (``atoms``) or the
    subgraph (``subgraph``; GraphMVP applies its 2D transform after the subgraph step), and
    masks or samples on its own.

    Learning rates as GraphMVP: the GIN, the 2D->3D reconstructor and the 2D method use ``lr``;
    SchNet and the 3D->2D reconstructor use ``lr * schnet_lr_scale``.

    Args:
        encoder: the 2D GIN (saved for fine-tuning).
        encoder_3d: SchNet with ``out_channels == encoder.out_dim``.
        loss: :class:`~fewmol.pretrain.losses.GraphMVPLoss` (alpha1, alpha2, beta, ...).
        method_2d: optional ``AttrMask`` / ``ContextPred`` module.
        alpha3: weight of the 2D method's loss (default 1; GraphMVP's scripts use 0.1 or 1).
        mask_ratio: M (default 0.15).
        mask_mode: ``atoms`` (default) or ``subgraph``.
        featurizer: featuriser name (gives the atom mask token).
        lr, weight_decay, seed: Adam and the per-epoch generator seed.
        schnet_lr_scale: learning-rate factor of the 3D side (default 0.1, GraphMVP's scripts).

    Logged parts: ``loss`` (total), ``contrastive``, ``generative`` and their sub-parts (see
    ``GraphMVPLoss``), and with a 2D method ``<method>`` (its unweighted loss) and
    ``<method>_<name>`` for its own values.
    """

    def __init__(
        self,
        encoder: GINEncoder,
        encoder_3d: SchNetEncoder,
        loss: GraphMVPLoss,
        method_2d: nn.Module | None = None,
        alpha3: float = 1.0,
        mask_ratio: float = 0.15,
        mask_mode: str = "atoms",
        featurizer: str = "hu2019",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        seed: int = 0,
        schnet_lr_scale: float = 0.1,
    ):
        super().__init__(encoder, lr, weight_decay, seed)
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        if mask_mode not in MASK_MODES:
            raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {mask_mode!r}")
        if alpha3 < 0 or schnet_lr_scale < 0:
            raise ValueError("alpha3 and schnet_lr_scale must be >= 0")
        if encoder_3d.out_dim != encoder.out_dim:
            raise ValueError(
                f"SchNet out_channels ({encoder_3d.out_dim}) must equal the GIN width "
                f"({encoder.out_dim}) for the dot-product critic"
            )
        self.encoder_3d, self.loss_fn, self.method = encoder_3d, loss, method_2d
        self.alpha3, self.mask_ratio, self.mask_mode = float(alpha3), mask_ratio, mask_mode
        self.featurizer, self.schnet_lr_scale = featurizer, schnet_lr_scale

    def views(self, batch: Batch3D) -> tuple[GraphBatch, GraphBatch, Batch3D]:
        """(2D input of the GraphMVP loss, graph for the 2D method, 3D input) after masking."""
        g = batch.graph
        if not self.training or self.mask_ratio <= 0:
            return g, g, batch
        if self.mask_mode == "subgraph":
            if batch.z.shape[0] != g.x.shape[0]:
                raise ValueError(
                    "subgraph masking needs conformers of the 2D graph's atoms only (a store "
                    "without hydrogens)"
                )
            keep = subgraph_keep(g, self.mask_ratio, self.generator)
            sub = induced_subgraph(g, keep).batch
            b3 = Batch3D(sub, batch.z[keep], batch.pos[keep], batch.batch[keep], batch.conf)
            return sub, sub, b3
        masked = mask_atoms(g, self.mask_ratio, self.generator, self.featurizer).batch
        return masked, g, batch

    def embed(self, batch: Batch3D) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled (2D, 3D) representations (n_molecules, dim) of the (masked) views."""
        view2d, _, b3 = self.views(batch)
        return self._embed(view2d, b3)

    def _embed(self, view2d: GraphBatch, b3: Batch3D) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(view2d.x, view2d.edge_index, view2d.edge_attr)
        x = global_pool(h, view2d.batch, view2d.num_graphs, "mean")
        y = self.encoder_3d(b3.z, b3.pos, b3.batch, view2d.num_graphs)
        return x, y

    def compute_loss(self, batch: Batch3D) -> tuple[torch.Tensor, Parts]:
        """GraphMVP loss (+ alpha3 x the 2D method's loss) on one batch."""
        view2d, graph2d, b3 = self.views(batch)
        x, y = self._embed(view2d, b3)
        # the contrastive and VRR terms in float32 even under bf16/fp16 autocast (--precision)
        with torch.autocast(x.device.type, enabled=False):
            loss, mvp_parts = self.loss_fn(x.float(), y.float())
        parts: Parts = {k: v for k, v in mvp_parts.items() if k != "loss"}
        if self.method is not None:
            l2d, logs = self.method.loss(self.encoder, graph2d, self.generator)
            if self.alpha3 > 0:
                loss = loss + self.alpha3 * l2d
            name = self.method.name
            parts[name] = l2d.detach()
            parts.update({f"{name}_{k}": v for k, v in logs.items()})
        parts["loss"] = loss.detach()
        return loss, parts

    def param_groups(self) -> list[dict[str, Any]]:
        """GIN / 2D->3D / method at ``lr``; SchNet / 3D->2D at ``lr * schnet_lr_scale``."""
        lr3d = self.lr * self.schnet_lr_scale
        gen = self.loss_fn.generative
        groups = [
            {"params": list(self.encoder.parameters()), "lr": self.lr},
            {"params": list(self.encoder_3d.parameters()), "lr": lr3d},
        ]
        if gen is not None:
            groups += [
                {"params": list(gen.to_3d.parameters()), "lr": self.lr},
                {"params": list(gen.to_2d.parameters()), "lr": lr3d},
            ]
        if self.method is not None:
            groups.append({"params": list(self.method.parameters()), "lr": self.lr})
        return groups
