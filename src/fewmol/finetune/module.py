"""Fine-tuning LightningModule: masked multi-task BCE (classification) or MSE (regression)."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch import nn

from fewmol.data.collate import GraphBatch
from fewmol.finetune.metrics import evaluate
from fewmol.models.heads import GraphPropertyModel
from fewmol.training import adam_with_encoder_lr, gather_columns, gathered_mean_loss


def masked_loss(out: torch.Tensor, y: torch.Tensor, task_type: str) -> torch.Tensor:
    """Mean BCE-with-logits or MSE over observed labels only (NaN = missing).

    Shapes: out, y (n_graphs, n_tasks). Returns a scalar; zero (with grad) if nothing observed.
    """
    mask = ~torch.isnan(y)
    if not bool(mask.any()):
        return out.sum() * 0.0
    target = torch.where(mask, y, torch.zeros_like(y))
    if task_type == "classification":
        per = nn.functional.binary_cross_entropy_with_logits(out, target, reduction="none")
    else:
        per = (out - target) ** 2
    return (per * mask).sum() / mask.sum()


class FinetuneModule(L.LightningModule):
    """Trains a GraphPropertyModel; collects per-epoch train/valid/test predictions and metrics.

    Regression targets are standardised with the training split's mean/std (``y_mean``,
    ``y_std``) inside the loss; :meth:`predict_values` returns values in the original units.
    """

    def __init__(
        self,
        model: GraphPropertyModel,
        task_type: str,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        encoder_lr: float | None = None,
        y_mean: np.ndarray | None = None,
        y_std: np.ndarray | None = None,
        freeze_encoder: bool = False,
        unfreeze_after: int | None = None,
    ):
        super().__init__()
        if task_type not in ("classification", "regression"):
            raise ValueError(f"task_type must be classification or regression, got {task_type!r}")
        self.model, self.task_type = model, task_type
        self.lr, self.weight_decay, self.encoder_lr = lr, weight_decay, encoder_lr
        n_tasks = model.head.n_tasks
        mean = np.zeros(n_tasks, np.float32) if y_mean is None else np.asarray(y_mean, np.float32)
        std = np.ones(n_tasks, np.float32) if y_std is None else np.asarray(y_std, np.float32)
        self.register_buffer("y_mean", torch.from_numpy(mean.copy()))
        self.register_buffer("y_std", torch.from_numpy(std.copy()))
        self.optimizer_state: dict | None = None  # restored on --resume
        # --freeze-encoder / --unfreeze-after E: the encoder is frozen for epochs < E (all if
        # E is None); epoch_offset counts the epochs done before a --resume
        self.freeze_encoder = freeze_encoder or unfreeze_after is not None
        self.unfreeze_after = unfreeze_after
        self.epoch_offset = 0
        self._train_buf: list[tuple[np.ndarray, np.ndarray]] = []
        self._train_loss: list[tuple[float, int]] = []
        self._eval_buf: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.epoch_metrics: dict[str, float] = {}

    # ------------------------------------------------------------------ encoder freezing
    def encoder_frozen(self, epoch: int | None = None) -> bool:
        """Whether the encoder is frozen in (0-based, run-wide) ``epoch`` (default: now)."""
        if not self.freeze_encoder:
            return False
        if epoch is None:
            epoch = self.epoch_offset + (self.trainer.current_epoch if self._trainer else 0)
        return self.unfreeze_after is None or epoch < self.unfreeze_after

    def on_train_epoch_start(self) -> None:
        """Freeze or unfreeze the encoder for this epoch."""
        frozen = self.encoder_frozen()
        for p in self.model.encoder.parameters():
            p.requires_grad_(not frozen)
        self.train(True)  # re-applies eval mode to a frozen encoder

    def train(self, mode: bool = True) -> FinetuneModule:
        """As nn.Module.train, but a frozen encoder stays in eval mode.

        Frozen means the pre-trained function is kept as is: no weight updates, and no
        batch-norm running statistics or dropout either (Lightning calls train() each epoch).
        """
        super().train(mode)
        if mode and self._trainer is not None and self.encoder_frozen():
            self.model.encoder.eval()
        return self

    # ------------------------------------------------------------------ model calls
    def forward(self, batch: GraphBatch) -> torch.Tensor:
        """Raw head outputs: logits or standardised values, (n_graphs, n_tasks), float32."""
        # float32 whatever the autocast precision: losses, metrics and numpy need it
        out = self.model(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
        return out.float()

    def to_output_scale(self, out: torch.Tensor) -> torch.Tensor:
        """Probabilities (classification) or values in the original units (regression)."""
        if self.task_type == "classification":
            return torch.sigmoid(out)
        return out * self.y_std + self.y_mean

    def _target(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.task_type == "classification" else (y - self.y_mean) / self.y_std

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: GraphBatch, batch_idx: int) -> torch.Tensor:
        """Masked loss on one batch; keeps predictions for the epoch's train metric."""
        out = self(batch)
        loss = masked_loss(out, self._target(batch.y), self.task_type)
        self._train_buf.append(
            (batch.y.detach().cpu().numpy(), self.to_output_scale(out.detach()).cpu().numpy())
        )
        self._train_loss.append((float(loss.detach()), batch.num_graphs))
        self.log("train_loss", loss, batch_size=batch.num_graphs, prog_bar=True)
        return loss

    def validation_step(self, batch: GraphBatch, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Collect predictions of the valid (0) and test (1) loaders."""
        pred = self.to_output_scale(self(batch))
        self._eval_buf.setdefault(dataloader_idx, []).append(
            (batch.y.cpu().numpy(), pred.cpu().numpy())
        )

    def on_validation_epoch_end(self) -> None:
        """Score valid and test; results land in ``epoch_metrics``."""
        for k, part in ((0, "valid"), (1, "test")):
            buf = self._eval_buf.get(k)
            if not buf:
                continue
            y, p = gather_columns(self, buf)
            for name, v in evaluate(self.task_type, y, p).items():
                self.epoch_metrics[f"{part}_{name}"] = v
        self._eval_buf = {}

    def pop_train_metrics(self) -> dict[str, float]:
        """Train loss and metrics of the epoch just finished (train-mode predictions).

        Under DDP every rank must call this (it gathers across ranks).
        """
        out: dict[str, float] = {}
        if self._train_loss:
            out["train_loss"] = gathered_mean_loss(self, self._train_loss)
        if self._train_buf:
            y, p = gather_columns(self, self._train_buf)
            for name, v in evaluate(self.task_type, y, p).items():
                out[f"train_{name}"] = v
        self._train_buf, self._train_loss = [], []
        return out

    # ------------------------------------------------------------------ optimiser
    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam; the encoder may get its own learning rate."""
        opt = adam_with_encoder_lr(
            self.model,
            self.model.encoder,
            self.lr,
            self.encoder_lr,
            self.weight_decay,
            self.optimizer_state,
        )
        self.optimizer_state = None
        return opt
