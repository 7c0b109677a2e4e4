"""Data loaders over a GraphSet: seeded shuffling, collation, batches for prediction.

Free of Lightning (seconds to import), so the CLI starts fast; the Lightning DataModule over
these loaders is ``fewmol.data.module.GraphDataModule``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from fewmol.data.collate import GraphBatch, GraphSet


class _Indices(Dataset):
    """Map-style dataset whose items are graph positions (collation does the real work)."""

    def __init__(self, idx: np.ndarray):
        self.idx = np.asarray(idx, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int) -> int:
        return int(self.idx[i])


class EpochSeededSampler(Sampler[int]):
    """Shuffles with seed (seed, epoch), so a resumed run sees the same order as an unbroken one.

    ``skip`` leaves out the first items of that order: a run resumed in the middle of an epoch
    continues with the items it had not reached.
    """

    def __init__(self, n: int, seed: int, epoch_offset: int = 0, skip: int = 0):
        self.n, self.seed, self.epoch, self.epoch_offset = n, seed, 0, epoch_offset
        self.skip = min(max(int(skip), 0), n)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch + self.epoch_offset])
        return iter(rng.permutation(self.n)[self.skip :].tolist())

    def __len__(self) -> int:
        return self.n - self.skip


class _Collate:
    """Picklable collate function (workers may run in other processes)."""

    def __init__(self, graphs: GraphSet, y: np.ndarray | None):
        self.graphs, self.y = graphs, y

    def __call__(self, idx: list[int]) -> GraphBatch:
        idx_arr = np.asarray(idx, dtype=np.int64)
        return self.graphs.collate(idx_arr, None if self.y is None else self.y[idx_arr])


def drop_single_remainder(n_items: int, batch_size: int, world_size: int = 1) -> bool:
    """Whether a training loader must drop its last batch: only when it would hold one item.

    A batch of one molecule with one heavy atom (methane in FreeSolv) breaks batch norm in
    training mode, and one molecule has no in-batch negative for contrastive losses; a larger
    remainder is kept, as the reference loaders do. Under DDP each rank gets ceil(n / world)
    items (the distributed sampler pads), so the remainder is per rank.
    """
    per_rank = -(-n_items // max(world_size, 1))
    return batch_size > 1 and per_rank % batch_size == 1


def make_loader(
    graphs: GraphSet,
    idx: np.ndarray,
    y: np.ndarray | None = None,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    epoch_offset: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """DataLoader yielding GraphBatch for graphs ``idx`` (shuffled per epoch if asked)."""
    ds = _Indices(idx)
    sampler = EpochSeededSampler(len(ds), seed, epoch_offset) if shuffle else None
    return DataLoader(
        ds,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=_Collate(graphs, y),
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        drop_last=drop_last,
    )


def trainer_world_size(module: Any) -> int:
    """Processes the attached Trainer trains on (1 before a Trainer is attached)."""
    trainer = getattr(module, "trainer", None)
    return trainer.world_size if trainer is not None else 1


def predict_batches(graphs: GraphSet, batch_size: int = 256) -> Iterator[GraphBatch]:
    """Batches over all graphs in order (for predict/embed)."""
    for start in range(0, len(graphs), batch_size):
        idx = np.arange(start, min(start + batch_size, len(graphs)), dtype=np.int64)
        yield graphs.collate(idx)


def standardize_stats(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-task mean and std of observed training labels (std 1 where undefined or zero)."""
    mean = np.nanmean(np.where(np.isnan(y), np.nan, y), axis=0) if len(y) else np.zeros(y.shape[1])
    std = np.nanstd(y, axis=0) if len(y) else np.ones(y.shape[1])
    mean = np.nan_to_num(mean, nan=0.0)
    std = np.where(~np.isfinite(std) | (std < 1e-8), 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)


def to_tensor(a: np.ndarray) -> torch.Tensor:
    """float32 tensor view of a numpy array."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
