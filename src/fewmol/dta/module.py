"""DTA LightningModule (MSE on standardised affinities) and its metrics: MSE and concordance index.

The concordance index (Gönen & Heller 2005) is the share of comparable pairs (y_i ≠ y_j) that
the predictions order the same way, ties in prediction counting ½. It equals
``(1 + S / n_comparable) / 2`` with ``S = Σ_{i<j} sign(y_i − y_j)·sign(p_i − p_j)``; S comes
from an inversion count in O(n log² n) vectorised numpy (KIBA's 19,709 test pairs: ~10 ms).
This is the all-pairs CI of GraphDTA / GraphMVP; DeepDTA's ``emetrics.get_cindex`` visits only
pairs whose later element has the larger label, an order-dependent half of them.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch

from fewmol.data.dta import EvalEntities, PairBatch, PairIds
from fewmol.dta.model import DTAModel
from fewmol.training import adam_with_encoder_lr, gather_columns, gathered_mean_loss


def _tie_pairs(a: np.ndarray) -> int:
    """Number of index pairs with equal values in ``a``."""
    _, counts = np.unique(a, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def _inversions(r: np.ndarray) -> int:
    """Pairs i < j with r[i] > r[j], for non-negative integers ``r`` (bottom-up merge counting).

    At width w, each block of 2w holds two halves already sorted; for every element of a right
    half, searchsorted on block-offset keys counts the larger elements of its left half.
    """
    n = len(r)
    vals = np.asarray(r, dtype=np.int64).copy()
    big = int(vals.max(initial=0)) + 1
    pos = np.arange(n)
    total = 0
    w = 1
    while w < n:
        block = pos // (2 * w)
        right = (pos % (2 * w)) >= w
        keys = block * big + vals  # globally sorted within each half-block
        left_keys = keys[~right]  # increasing: blocks ascend and each half is sorted
        left_end = np.searchsorted(left_keys, block[right] * big + big, side="left")
        le = np.searchsorted(left_keys, keys[right], side="right")  # left elements <= x
        total += int((left_end - le).sum())
        vals = np.sort(keys) - block * big  # merge: each 2w block sorted (block ids unchanged)
        w *= 2
    return total


def concordance_index(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """CI over all pairs with different labels; tied predictions count ½ (NaN if none)."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true and y_pred sizes differ: {y.shape} vs {p.shape}")
    n = len(y)
    total = n * (n - 1) // 2
    comparable = total - _tie_pairs(y)
    if comparable == 0:
        return float("nan")
    rp = np.unique(p, return_inverse=True)[1].ravel()  # dense ranks: ties stay ties
    order = np.lexsort((rp, y))  # by y, ties in y broken by prediction rank
    rp = rp[order]
    # over i < j in this order: sum sign(rp_j - rp_i) = (pairs untied in p) - 2 * inversions
    s_all = total - _tie_pairs(rp) - 2 * _inversions(rp)
    # pairs tied in y are ordered by rp within their group: they add +1 unless tied in p too
    gy = np.unique(y[order], return_inverse=True)[1].ravel()
    s_within = _tie_pairs(gy) - _tie_pairs(gy * (int(rp.max(initial=0)) + 1) + rp)
    s = s_all - s_within
    return float(0.5 * (1.0 + s / comparable))


def dta_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE, RMSE, concordance index and Pearson r in the affinity's own units."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if len(y) == 0:
        return {
            "mse": float("nan"),
            "rmse": float("nan"),
            "ci": float("nan"),
            "pearson": float("nan"),
        }
    mse = float(np.mean((p - y) ** 2))
    r = (
        float(np.corrcoef(y, p)[0, 1])
        if len(y) > 1 and y.std() > 0 and p.std() > 0
        else float("nan")
    )
    return {"mse": mse, "rmse": float(np.sqrt(mse)), "ci": concordance_index(y, p), "pearson": r}


class DTAModule(L.LightningModule):
    """Trains a DTAModel with MSE on standardised affinities; scores valid (0) and test (1).

    ``y_mean``/``y_std`` (training pairs) standardise the target inside the loss only;
    predictions and metrics are in the dataset's units (pKd, KIBA score).
    """

    def __init__(
        self,
        model: DTAModel,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        encoder_lr: float | None = None,
        y_mean: float = 0.0,
        y_std: float = 1.0,
    ):
        super().__init__()
        self.model = model
        self.lr, self.weight_decay, self.encoder_lr = lr, weight_decay, encoder_lr
        self.register_buffer("y_mean", torch.tensor(float(y_mean)))
        self.register_buffer("y_std", torch.tensor(float(y_std)))
        self.optimizer_state: dict | None = None  # restored on --resume
        self._train_buf: list[tuple[np.ndarray, np.ndarray]] = []
        self._train_loss: list[tuple[float, int]] = []
        self._eval_buf: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        self.epoch_metrics: dict[str, float] = {}
        self.eval_predictions: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        # Where evaluation batches of PairIds get their drugs and proteins (set by the run);
        # each is encoded once per evaluation into these (n_drugs, d) / (n_proteins, d) tables.
        self.eval_entities: EvalEntities | None = None
        self.eval_chunk = 256
        self._tables: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, batch: PairBatch) -> torch.Tensor:
        """Standardised outputs, one per pair (n_pairs,), float32 under any autocast."""
        d = batch.drugs
        return self.model(
            d.x, d.edge_index, d.edge_attr, d.batch, d.num_graphs, batch.drug_index,
            batch.proteins, batch.protein_lengths, batch.protein_index,
        ).float()  # fmt: skip

    def to_output_scale(self, out: torch.Tensor) -> torch.Tensor:
        """Outputs in the affinity's units."""
        return out * self.y_std + self.y_mean

    def training_step(self, batch: PairBatch, batch_idx: int) -> torch.Tensor:
        """MSE on one batch; keeps predictions for the epoch's train metrics."""
        out = self(batch)
        loss = torch.nn.functional.mse_loss(out, (batch.y - self.y_mean) / self.y_std)
        self._train_buf.append(
            (batch.y.cpu().numpy(), self.to_output_scale(out.detach()).cpu().numpy())
        )
        self._train_loss.append((float(loss.detach()), batch.num_pairs))
        self.log("train_loss", loss, batch_size=batch.num_pairs, prog_bar=True)
        return loss

    def entity_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of every evaluation drug and protein, rows indexed by Y row / column.

        Computed once per evaluation (the encoders are in eval mode, so a drug's or protein's
        embedding does not depend on its batch): KIBA's 39k valid/test pairs need 2,111 GIN
        and 229 CNN passes instead of one per distinct entity per batch.
        """
        if self._tables is None:
            ent = self.eval_entities
            if ent is None:
                raise RuntimeError("PairIds batches need eval_entities (set by DTARun)")
            self._tables = self.model.embed_tables(
                ent.drug_batches(self.eval_chunk),
                ent.protein_batches(self.eval_chunk),
                len(ent.data.drug_ids),
                len(ent.data.proteins),
                self.device,
            )
        return self._tables

    def on_validation_epoch_start(self) -> None:
        """Encode afresh: the weights changed since the last evaluation."""
        self._tables = None

    def validation_step(
        self, batch: PairBatch | PairIds, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Collect (pair index, label, prediction) of the valid (0) and test (1) loaders."""
        if isinstance(batch, PairIds):
            drug, prot = self.entity_tables()
            out = self.model.pair_head(drug, prot, batch.drug, batch.protein).float()
        else:
            out = self(batch)
        pred = self.to_output_scale(out)
        self._eval_buf.setdefault(dataloader_idx, []).append(
            (batch.index.cpu().numpy(), batch.y.cpu().numpy(), pred.cpu().numpy())
        )

    def on_validation_epoch_end(self) -> None:
        """Score valid and test into ``epoch_metrics``; keep their predictions."""
        for k, part in ((0, "valid"), (1, "test")):
            buf = self._eval_buf.get(k)
            if not buf:
                continue
            idx, y, p = gather_columns(self, buf)
            self.eval_predictions[part] = (idx, y, p)
            for name, v in dta_metrics(y, p).items():
                self.epoch_metrics[f"{part}_{name}"] = v
        self._eval_buf = {}
        self._tables = None

    def pop_train_metrics(self) -> dict[str, float]:
        """Train loss (standardised) and metrics of the epoch just finished (train mode)."""
        out: dict[str, float] = {}
        if self._train_loss:
            out["train_loss"] = gathered_mean_loss(self, self._train_loss)
        if self._train_buf:
            y, p = gather_columns(self, self._train_buf)
            for name, v in dta_metrics(y, p).items():
                out[f"train_{name}"] = v
        self._train_buf, self._train_loss = [], []
        return out

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam (DeepDTA); the GIN drug encoder may get its own learning rate."""
        opt = adam_with_encoder_lr(
            self.model,
            self.model.drug_encoder,
            self.lr,
            self.encoder_lr,
            self.weight_decay,
            self.optimizer_state,
        )
        self.optimizer_state = None
        return opt
