"""Lightning DataModule over a GraphSet with labels and a split."""

from __future__ import annotations

import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from fewmol.data.collate import GraphSet
from fewmol.data.loaders import (  # re-exported: they lived here before loaders.py
    EpochSeededSampler,
    _Collate,
    _Indices,
    drop_single_remainder,
    make_loader,
    predict_batches,
    standardize_stats,
    to_tensor,
    trainer_world_size,
)
from fewmol.data.splits import Split

__all__ = [
    "EpochSeededSampler",
    "GraphDataModule",
    "_Collate",
    "_Indices",
    "drop_single_remainder",
    "make_loader",
    "predict_batches",
    "standardize_stats",
    "to_tensor",
    "trainer_world_size",
]


class GraphDataModule(L.LightningDataModule):
    """Train loader plus (valid, test) evaluation loaders over one GraphSet."""

    def __init__(
        self,
        graphs: GraphSet,
        y: np.ndarray,
        split: Split,
        batch_size: int = 32,
        eval_batch_size: int = 256,
        seed: int = 0,
        epoch_offset: int = 0,
        num_workers: int = 0,
    ):
        super().__init__()
        self.graphs, self.y, self.split = graphs, y.astype(np.float32), split
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.epoch_offset, self.num_workers = seed, epoch_offset, num_workers

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches (a last batch of one molecule is dropped)."""
        n, world = len(self.split.train), trainer_world_size(self)
        return make_loader(
            self.graphs,
            self.split.train,
            self.y,
            self.batch_size,
            True,
            self.seed,
            self.epoch_offset,
            self.num_workers,
            drop_last=drop_single_remainder(n, self.batch_size, world),
        )

    def val_dataloader(self) -> list[DataLoader]:
        """[valid, test] loaders; a part with no molecules is skipped by the module."""
        return [
            make_loader(self.graphs, part, self.y, self.eval_batch_size)
            for part in (self.split.valid, self.split.test)
        ]
