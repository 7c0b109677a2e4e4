"""The Lightning DataModule of pre-training: shuffled 2D or 3D batches of a PretrainData."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
from torch.utils.data import DataLoader, Dataset, Sampler

from fewmol.data.loaders import (
    EpochSeededSampler,
    _Collate,
    _Indices,
    drop_single_remainder,
    trainer_world_size,
)
from fewmol.pretrain.data import Collate3D, ConformerSampler, PretrainData, _Items


class PretrainDataModule(L.LightningDataModule):
    """Training batches of a :class:`PretrainData`: GraphBatch (2D) or Batch3D (GraphMVP)."""

    def __init__(
        self,
        data: PretrainData,
        batch_size: int = 256,
        seed: int = 0,
        epoch_offset: int = 0,
        conf_sampling: str = "cycle",
        num_workers: int = 0,
        use_3d: bool | None = None,
        skip: int = 0,
    ):
        super().__init__()
        # items of the first epoch already trained before a mid-epoch stop (all ranks together)
        self.skip = skip
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.epoch_offset, self.conf_sampling, self.num_workers = (
            epoch_offset,
            conf_sampling,
            num_workers,
        )
        self.use_3d = data.is_3d if use_3d is None else use_3d
        if self.use_3d and not data.is_3d:
            raise ValueError("3D batches need a PretrainData with conformers")

    def train_dataloader(self) -> DataLoader:
        """Shuffled batches, seeded by (seed, epoch); the first epoch may start part-way.

        With ``skip``, the run reloads its loader every epoch (``reload_dataloaders_every_n_
        epochs=1``): only the loader of the first epoch is shortened.
        """
        world = trainer_world_size(self)
        trainer = getattr(self, "trainer", None)
        skip = self.skip if trainer is None or trainer.current_epoch == 0 else 0
        if self.use_3d:
            sampler: Sampler = ConformerSampler(
                self.data.n_confs, self.seed, self.epoch_offset, self.conf_sampling, skip
            )
            dataset: Dataset = _Items(len(sampler))
            collate: Any = Collate3D(self.data)
        else:
            sampler = EpochSeededSampler(len(self.data), self.seed, self.epoch_offset, skip)
            dataset = _Indices(np.arange(len(self.data)))
            collate = _Collate(self.data.graphs, self.data.graph_labels)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=collate,
            drop_last=drop_single_remainder(len(sampler), self.batch_size, world),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
